"""Step two of the join, per tracking token: merge the click with its stage facts.

Pure: state in, state and effects out. The state (a JSON-able dict a Faust table
keeps per token) holds what conversions need from the click, the cookies the
browser reported, the ids of conversions already emitted, and stage facts that
arrived before their click (they wait here until it comes, or until
`wait_timeout_ms` drops them: without the click there is no pixel to send to).
Projection rows are effects too; they are idempotent upserts, so a redelivered
input changes nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .bot_users import PAYMENT_STAGES, TOKEN
from .conversions import STAGE_EVENTS, Conversion, conversion_id, page_view, stage_conversion
from .timeutil import iso_to_ms

State = dict[str, Any]
_CLICK_KEEP = ("tracking_token", "pageview_event_id", "pixel_id", "fbc", "fbp", "client_ip",
               "user_agent", "landing_url", "is_crawler")


@dataclass(frozen=True)
class Context:
    rule_version: int
    projection_version: str
    now_ms: int
    wait_timeout_ms: int


@dataclass
class Effects:
    token_rows: list[dict[str, Any]] = field(default_factory=list)
    cookie_rows: list[dict[str, Any]] = field(default_factory=list)
    fact_rows: list[dict[str, Any]] = field(default_factory=list)
    payment_rows: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    dropped_waiting: int = 0
    _payloads: list[bytes] | None = field(default=None, repr=False, compare=False)

    def payloads(self) -> list[bytes]:
        """The conversions as JSON records, encoded once for both Postgres and Kafka."""
        if self._payloads is None or len(self._payloads) != len(self.conversions):
            self._payloads = [orjson.dumps(c) for c in self.conversions]
        return self._payloads

    def extend(self, other: Effects) -> None:
        self.token_rows += other.token_rows
        self.cookie_rows += other.cookie_rows
        self.fact_rows += other.fact_rows
        self.payment_rows += other.payment_rows
        self.conversions += other.conversions
        self.dropped_waiting += other.dropped_waiting


def new_state() -> State:
    return {"click": None, "cookies": None, "emitted": [], "waiting": {}}


def attribution_event_id(source_event_id: str, kind: str, token: str | None) -> str:
    """Deterministic id of a StageAttributed: the same decision always gets the same id.

    The attribution kind (token / organic / unattributed) travels in it because
    StageAttributed has no field for it.
    """
    return f"{source_event_id}|{kind}|{token or '-'}"


def kind_of(attributed_event_id: str) -> str:
    parts = attributed_event_id.rsplit("|", 2)
    return parts[1] if len(parts) == 3 else TOKEN


def on_click(state: State, click: dict[str, Any], ctx: Context) -> tuple[State, Effects]:
    fx = Effects(token_rows=[token_row(click)])
    state = _copy(state)
    fx.dropped_waiting = _drop_stale(state, ctx)
    if state["click"] is None:
        kept = {k: click.get(k) for k in _CLICK_KEEP}
        kept["at_ms"] = iso_to_ms(click["occurred_at"])
        state["click"] = kept
        if _sendable(kept):
            _emit(state, fx, page_view(kept, state["cookies"], rule_version=ctx.rule_version,
                                       projection_version=ctx.projection_version))
            for conv_id in sorted(state["waiting"]):
                item = state["waiting"][conv_id]
                _emit(state, fx, _stage_conv(item, kept, state["cookies"], ctx))
        state["waiting"] = {}
    return state, fx


def on_cookies(state: State, cookies: dict[str, Any], ctx: Context) -> tuple[State, Effects]:
    state = _copy(state)
    fx = Effects(cookie_rows=[{"tracking_token": cookies["tracking_token"],
                               "cookie_fbc": cookies.get("fbc"),
                               "cookie_fbp": cookies.get("fbp")}])
    fx.dropped_waiting = _drop_stale(state, ctx)
    merged = dict(state["cookies"] or {})
    for name in ("fbc", "fbp"):
        if cookies.get(name):
            merged[name] = cookies[name]
    state["cookies"] = merged
    return state, fx


def on_attributed(state: State, att: dict[str, Any], ctx: Context) -> tuple[State, Effects]:
    stage, fact, token = att["stage"], att["fact"], att.get("tracking_token")
    kind = kind_of(att["event_id"])
    fx = Effects(fact_rows=[fact_row(att, kind)])
    if stage in PAYMENT_STAGES:
        fx.payment_rows.append(payment_row(att, kind))
    state = _copy(state)
    fx.dropped_waiting = _drop_stale(state, ctx)
    if token is None or stage not in STAGE_EVENTS:
        return state, fx
    conv_id = conversion_id(stage, token, fact)
    if conv_id in state["emitted"]:
        return state, fx
    at_ms = iso_to_ms(fact["paid_at"] if stage == "paid" else fact["occurred_at"])
    item = {"stage": stage, "fact": fact, "at_ms": at_ms, "seen_ms": ctx.now_ms}
    click = state["click"]
    if click is None:
        earlier = state["waiting"].get(conv_id)
        # Several /starts of one token: ViewContent carries the first one.
        if earlier is None or (at_ms, fact["event_id"]) < (earlier["at_ms"],
                                                          earlier["fact"]["event_id"]):
            state["waiting"][conv_id] = item
    elif _sendable(click):
        _emit(state, fx, _stage_conv(item, click, state["cookies"], ctx))
    return state, fx


def waiting_count(state: State) -> int:
    return len(state["waiting"])


def _sendable(click: dict[str, Any]) -> bool:
    # Crawlers are flagged, never counted: no event fires for them (DESIGN.md, no cloaking).
    return bool(click.get("pixel_id")) and not click.get("is_crawler")


def _emit(state: State, fx: Effects, conv: Conversion) -> None:
    if conv["event_id"] not in state["emitted"]:
        state["emitted"].append(conv["event_id"])
        fx.conversions.append(conv)


def _stage_conv(item: dict[str, Any], click: dict[str, Any], cookies: dict[str, Any] | None,
                ctx: Context) -> Conversion:
    return stage_conversion(item["stage"], item["fact"], item["at_ms"], click, cookies,
                            rule_version=ctx.rule_version,
                            projection_version=ctx.projection_version)


def _drop_stale(state: State, ctx: Context) -> int:
    if not state["waiting"]:
        return 0
    stale = [k for k, v in state["waiting"].items()
             if ctx.now_ms - v["seen_ms"] >= ctx.wait_timeout_ms]
    for k in stale:
        del state["waiting"][k]
    return len(stale)


def _copy(state: State) -> State:
    return {"click": state["click"], "cookies": state["cookies"],
            "emitted": list(state["emitted"]), "waiting": dict(state["waiting"])}


def token_row(click: dict[str, Any]) -> dict[str, Any]:
    return {
        "tracking_token": click["tracking_token"],
        "pool_id": click["pool_id"], "pool_slug": click["pool_slug"],
        "bot_id": click["bot_id"], "bot_username": click["bot_username"],
        "pixel_id": click.get("pixel_id"), "clicked_at": click["occurred_at"],
        "is_crawler": bool(click.get("is_crawler")), "fbclid": click.get("fbclid"),
        "fbc": click.get("fbc"), "fbp": click.get("fbp"), "fbc_origin": click.get("fbc_origin"),
        "utm_source": click.get("utm_source"), "utm_medium": click.get("utm_medium"),
        "utm_campaign": click.get("utm_campaign"), "utm_content": click.get("utm_content"),
        "utm_term": click.get("utm_term"), "campaign_params": click.get("campaign_params") or {},
        "client_ip": click.get("client_ip"), "user_agent": click.get("user_agent"),
        "landing_url": click.get("landing_url"),
    }


def fact_row(att: dict[str, Any], kind: str) -> dict[str, Any]:
    fact = att["fact"]
    return {
        "source_event_id": att["source_event_id"], "stage": att["stage"],
        "tracking_token": att.get("tracking_token"), "attribution": kind,
        "bot_id": att.get("bot_id"), "telegram_user_id": att.get("telegram_user_id"),
        "payment_id": fact.get("payment_id"), "occurred_at": fact["occurred_at"],
        "amount_cents": fact.get("amount_cents"), "decided_at": att["occurred_at"],
    }


_STAGE_TIME = {"pix_generated": ("pix_at", "occurred_at"), "paid": ("paid_at", "paid_at"),
               "refunded": ("refunded_at", "refunded_at"), "expired": ("expired_at", "expired_at"),
               "delivered": ("delivered_at", "opened_at")}


def payment_row(att: dict[str, Any], kind: str) -> dict[str, Any]:
    fact, stage = att["fact"], att["stage"]
    row: dict[str, Any] = {
        "payment_id": fact["payment_id"], "bot_id": att.get("bot_id"),
        "telegram_user_id": att.get("telegram_user_id"),
        "tracking_token": att.get("tracking_token"), "attribution": kind,
        "decided_at": att["occurred_at"], "product_id": fact.get("product_id"),
        "amount_cents": fact.get("amount_cents") if stage in ("pix_generated", "paid") else None,
        "pix_at": None, "paid_at": None, "refunded_at": None, "refunded_cents": None,
        "expired_at": None, "delivered_at": None,
    }
    column, source = _STAGE_TIME[stage]
    row[column] = fact[source]
    if stage == "refunded":
        row["refunded_cents"] = fact.get("amount_cents")
    return row
