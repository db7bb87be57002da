"""Prometheus metrics of the projector worker (bounded labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("grim_projector_events_total", "Stage facts processed", ["stage"])
DUPLICATES = Counter("grim_projector_duplicate_events_total", "Redelivered facts ignored", ["stage"])
MALFORMED = Counter("grim_projector_malformed_events_total", "Records dead-lettered", ["topic"])
CONVERSIONS = Counter("grim_projector_conversions_total", "Conversions emitted", ["event_name"])
ATTRIBUTIONS = Counter("grim_projector_attributions_total", "Attribution decisions", ["kind"])
PENDING = Gauge("grim_projector_pending_facts", "Payment facts waiting for a token decision")
WAITING_DROPPED = Counter("grim_projector_waiting_dropped_total",
                          "Stage facts whose click never came within the wait timeout")
WRITE_SECONDS = Histogram("grim_projector_projection_write_seconds",
                          "Time to upsert one batch into the projection")
BATCH_SECONDS = Histogram("grim_projector_batch_seconds", "Time to handle one batch", ["step"])
LAG = Gauge("grim_projector_consumer_lag_records", "Records not yet consumed", ["topic"])
BATCH_RETRIES = Counter("grim_projector_batch_retries_total",
                        "Batches retried after a transient Kafka/Postgres failure")
