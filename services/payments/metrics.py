"""Prometheus metrics of the payments service (bounded labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHARGES = Counter(
    "grim_payments_charges_created_total",
    "POST /charges outcomes by gateway (created, replayed, conflict, gateway_error, ...)",
    ["gateway", "outcome"],
)
WEBHOOKS = Counter(
    "grim_payments_webhooks_total",
    "Gateway webhooks by outcome (accepted, duplicate, forged, unverifiable, ignored, retry)",
    ["gateway", "outcome"],
)
TRANSITIONS = Counter(
    "grim_payments_state_transitions_total",
    "Facts recorded on charges, by fact and resulting state",
    ["fact", "state"],
)
GATEWAY_LATENCY = Histogram(
    "grim_payments_gateway_call_duration_seconds",
    "Latency of calls to payment gateways",
    ["gateway", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GATEWAY_CALLS = Counter(
    "grim_payments_gateway_calls_total",
    "Calls to payment gateways by status class",
    ["gateway", "operation", "outcome"],
)
EXPIRED = Counter(
    "grim_payments_pending_expired_total",
    "Pending charges past their expiry that reconciliation settled, by how",
    ["outcome"],
)
DELIVERIES = Counter(
    "grim_payments_delivery_opens_total",
    "Delivery page requests by outcome (first, repeat, unknown)",
    ["outcome"],
)
