"""Counters of the funnel and delivery consumers (labels are bounded sets)."""

from __future__ import annotations

from prometheus_client import Counter

UPDATES = Counter(
    "grim_bot_gateway_updates_total",
    "Telegram updates consumed, by type and result (handled/ignored/duplicate/failed)",
    ["update_type", "result"],
)
DELIVERIES = Counter(
    "grim_bot_gateway_deliveries_total",
    "Delivery messages by outcome (sent/duplicate/blocked/failed)",
    ["outcome"],
)
BLOCKED_USERS = Counter(
    "grim_bot_gateway_blocked_users_total", "Users found to have blocked a bot"
)
STARTS = Counter(
    "grim_bot_gateway_starts_total", "/start commands bound, by whether a token came with them",
    ["attributed"],
)
