"""Step one of the join, per bot user: which token does each stage fact belong to?

Pure: state in, state and assignments out. The state is a JSON-able dict that a
Faust table keeps per `bot_id:telegram_user_id`; it holds the user's facts so a
late `/start` (or a late pix_generated, which moves a payment's anchor time)
re-decides earlier facts. Decisions are a function of the set of facts seen
(plus a wall-clock timeout for facts nothing can decide), so any arrival order
converges to the same attribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rules import Rule, Touch
from .timeutil import iso_to_ms

ORGANIC = "organic"
UNATTRIBUTED = "unattributed"
TOKEN = "token"
PAYMENT_STAGES = ("pix_generated", "paid", "refunded", "expired", "delivered")
# Envelope fields that every fact repeats and no reader of `fact` needs.
_DROP = ("producer", "schema_version")
_START_KEEP = ("event_id", "type", "occurred_at", "tracking_token", "bot_id", "telegram_user_id")
_PAYMENT_KEEP = (*_START_KEEP, "payment_id", "product_id", "amount_cents", "currency", "payer",
                 "paid_at", "refunded_at", "reason", "expired_at", "opened_at")

State = dict[str, Any]


@dataclass(frozen=True)
class Assignment:
    """A stage fact with the token (or none) the rule gave it."""

    stage: str
    source_event_id: str
    token: str | None
    kind: str  # TOKEN, ORGANIC or UNATTRIBUTED
    bot_id: int
    telegram_user_id: int
    fact: dict[str, Any]


def new_state() -> State:
    return {"facts": {}, "decided": {}}


def add_fact(
    state: State, stage: str, fact: dict[str, Any], *, rule: Rule, now_ms: int, timeout_ms: int
) -> tuple[State, list[Assignment]]:
    """Record one fact (a JSON dict of a BotStarted, PixGenerated, ...) and re-decide.

    A fact already recorded (same event_id: a redelivery) changes nothing.
    """
    event_id = fact["event_id"]
    if event_id in state["facts"]:
        return state, []
    facts = dict(state["facts"])
    body = {k: v for k, v in fact.items() if k not in _DROP}
    # A /start is decided once, on arrival (its own token), so its full body is only
    # needed now; later decisions read its time and token. Keeping less keeps state small.
    # Payment facts may be re-emitted by a later re-decision: they keep what the projection
    # and the conversions read (gateway ids and URLs travel only with the first emission).
    keep = _START_KEEP if stage == "start" else _PAYMENT_KEEP
    kept = {k: body[k] for k in keep if body.get(k) is not None}
    facts[event_id] = {"stage": stage, "seen_ms": now_ms, "body": kept}
    return _reassess({"facts": facts, "decided": dict(state["decided"])}, rule, now_ms,
                     timeout_ms, fresh=(event_id, body))


def expire(state: State, *, rule: Rule, now_ms: int,
           timeout_ms: int) -> tuple[State, list[Assignment]]:
    """Re-decide with a later clock: facts waiting longer than the timeout become unattributed."""
    return _reassess({"facts": state["facts"], "decided": dict(state["decided"])}, rule, now_ms,
                     timeout_ms)


def pending_count(state: State) -> int:
    return sum(1 for eid in state["facts"] if eid not in state["decided"])


def oldest_pending_ms(state: State) -> int | None:
    seen = [f["seen_ms"] for eid, f in state["facts"].items() if eid not in state["decided"]]
    return min(seen) if seen else None


def decisions(state: State) -> dict[str, str]:
    """event_id -> token, ORGANIC or UNATTRIBUTED (pending facts are absent)."""
    return dict(state["decided"])


def _reassess(state: State, rule: Rule, now_ms: int, timeout_ms: int,
              fresh: tuple[str, dict[str, Any]] | None = None) -> tuple[State, list[Assignment]]:
    facts = state["facts"]
    decided = state["decided"]
    touches = sorted(
        Touch(iso_to_ms(f["body"]["occurred_at"]), f["body"]["tracking_token"])
        for f in facts.values()
        if f["stage"] == "start" and f["body"].get("tracking_token")
    )
    any_start = any(f["stage"] == "start" for f in facts.values())
    payments: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for event_id, f in facts.items():
        if f["stage"] in PAYMENT_STAGES:
            payments.setdefault(f["body"]["payment_id"], []).append((event_id, f))

    wanted: dict[str, str] = {}
    for event_id, f in facts.items():
        if f["stage"] == "start":
            wanted[event_id] = f["body"].get("tracking_token") or ORGANIC
    for members in payments.values():
        verdict = _decide_payment(members, touches, any_start, rule, now_ms, timeout_ms)
        if verdict is not None:
            for event_id, _ in members:
                wanted[event_id] = verdict

    out: list[Assignment] = []
    # Sorted so the emitted order is a function of the state, not of dict history.
    for event_id in sorted(wanted):
        verdict = wanted[event_id]
        if decided.get(event_id) == verdict:
            continue
        decided[event_id] = verdict
        f = facts[event_id]
        body = fresh[1] if fresh is not None and fresh[0] == event_id else f["body"]
        is_token = verdict not in (ORGANIC, UNATTRIBUTED)
        out.append(Assignment(
            stage=f["stage"],
            source_event_id=event_id,
            token=verdict if is_token else None,
            kind=TOKEN if is_token else verdict,
            bot_id=int(body["bot_id"]),
            telegram_user_id=int(body["telegram_user_id"]),
            fact=body,
        ))
    return state, out


def _decide_payment(
    members: list[tuple[str, dict[str, Any]]],
    touches: list[Touch],
    any_start: bool,
    rule: Rule,
    now_ms: int,
    timeout_ms: int,
) -> str | None:
    by_stage = {f["stage"]: f["body"] for _, f in members}
    # The payment is judged at the time its charge was created: every later fact of
    # the same payment (paid, refund, delivery) follows the charge's attribution.
    anchor = by_stage.get("pix_generated")
    anchor_ms = (iso_to_ms(anchor["occurred_at"]) if anchor is not None
                 else min(iso_to_ms(f["body"]["occurred_at"]) for _, f in members))
    fallback = (by_stage.get("pix_generated") or {}).get("tracking_token") or (
        by_stage.get("paid") or {}).get("tracking_token")
    timed_out = now_ms - min(f["seen_ms"] for _, f in members) >= timeout_ms
    if anchor is None and not fallback and not timed_out:
        # paid/refund/delivery before its pix_generated: the charge carries the funnel's
        # token and the anchor time, so wait for it.
        return None
    if fallback and not timed_out and all(t.token != fallback for t in touches):
        # The funnel saw a /start with this token that has not reached us yet: deciding
        # now would credit an older touch and flip later. Wait for it (or the timeout).
        return None
    decision = rule(touches, anchor_ms, fallback)
    if decision is not None:
        return decision.token
    if any_start:
        return ORGANIC
    return UNATTRIBUTED if timed_out else None
