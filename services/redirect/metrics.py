"""Prometheus metrics of the redirect (labels are bounded: outcomes, ids from config)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "grim_redirect_requests_total",
    "/go requests by outcome (bridge, redirect, not_found, pool_disabled, no_bot, unavailable)",
    ["outcome"],
)
CLICK_LATENCY = Histogram(
    "grim_redirect_click_duration_seconds",
    "Time to answer /go, click capture and publication included",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CLICKS = Counter(
    "grim_redirect_clicks_recorded_total",
    "Click events made durable, by path (kafka, outbox, spool) and kind (visitor, crawler)",
    ["path", "kind"],
)
SPOOL_BACKLOG = Gauge(
    "grim_redirect_spool_backlog_records", "Clicks in the local spool waiting for Kafka/PostgreSQL"
)
SELECTIONS = Counter(
    "grim_redirect_bot_selections_total", "Bots chosen for counted clicks", ["pool_id", "bot_id"]
)
CRAWLER_HITS = Counter(
    "grim_redirect_crawler_hits_total", "/go requests from crawlers and link previews", ["crawler"]
)
COOKIE_REPORTS = Counter(
    "grim_redirect_cookie_reports_total", "Cookie beacons by outcome", ["outcome"]
)
KAFKA_UP = Gauge("grim_redirect_kafka_connected", "1 when the click producer is connected")
ROTATION_BATCH = Histogram(
    "grim_redirect_rotation_batch_clicks",
    "Clicks served by one Redis rotation call (concurrent clicks of a pool share a call)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
