"""Prometheus metrics of the dispatcher (labels bounded: pixels are configured, names fixed)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_SENT = Counter(
    "grim_dispatcher_events_sent_total", "Events put in a Graph request (each attempt)",
    ["pixel_id", "event_name"],
)
EVENTS_ACCEPTED = Counter(
    "grim_dispatcher_events_accepted_total", "Events Meta accepted and the ledger recorded",
    ["pixel_id", "event_name"],
)
EVENTS_FAILED = Counter(
    "grim_dispatcher_events_failed_total", "Events parked in the DLQ, by kind of reason",
    ["pixel_id", "event_name", "kind"],
)
EVENTS_SKIPPED = Counter(
    "grim_dispatcher_events_skipped_total", "Events not sent because the pixel disables them",
    ["pixel_id", "event_name"],
)
DEDUPLICATED = Counter(
    "grim_dispatcher_deduplicated_total", "Events skipped because already accepted or repeated",
    ["source"],
)
RETRIES = Counter(
    "grim_dispatcher_retries_total", "Retries: in process, or parked on the delayed retry topic",
    ["where"],
)
CLAMPED = Counter(
    "grim_dispatcher_event_time_clamped_total", "Future event_time values clamped to now",
)
SOURCE_FALLBACK = Counter(
    "grim_dispatcher_action_source_fallback_total",
    "Events sent as chat/system_generated because website needs browser data they lack",
    ["event_name"],
)
BATCH_SIZE = Histogram(
    "grim_dispatcher_batch_size_events", "Events per Graph request",
    buckets=(1, 5, 10, 50, 100, 250, 500, 750, 1000),
)
GRAPH_REQUESTS = Counter(
    "grim_dispatcher_graph_requests_total", "Graph API requests by outcome", ["outcome"],
)
GRAPH_LATENCY = Histogram(
    "grim_dispatcher_graph_request_duration_seconds", "Graph API request latency by outcome",
    ["outcome"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LEDGER_LAG = Histogram(
    "grim_dispatcher_ledger_lag_seconds",
    "From the conversion being requested to Meta's acceptance being in the ledger",
    buckets=(0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 86400),
)
DLQ_SIZE = Gauge(
    "grim_dispatcher_dlq_size_events", "Dead-lettered conversions not yet retried",
)
OLDEST_UNSENT = Gauge(
    "grim_dispatcher_oldest_unsent_age_seconds",
    "Age of the oldest conversion fetched but not yet accepted or parked",
)
