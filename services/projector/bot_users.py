"""Step one of the join, per bot user: which token does each stage fact belongs to?

Pure: state in, state and assignments out. The state is a JSON-able dict that a
Faust table keeps per `bot_id:telegram_user_id`; it holds the user's facts so a
late `/start` (or a late pix_generated, which moves a payment's anchor time)
re-decides earlier facts. Decisions are a function of the set of facts seen
(plus a wall-clock timeout for facts nothing can decide), so any arrival order
converges to the same attribution.

The state is kept compact because it is written to the changelog on every
change: one entry per fact, `[stage, seen_ms, occurred_ms, verdict, body]`, with
the envelope (event id, type, time, bot and user) stored once and rebuilt when a
fact is re-emitted. States of the first layout (`facts`/`decided`) are read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rules import Rule, Touch
from .timeutil import iso_to_ms, ms_to_iso

ORGANIC = "organic"
UNATTRIBUTED = "unattributed"
TOKEN = "token"
PAYMENT_STAGES = ("pix_generated", "paid", "refunded", "expired", "delivered")
# Envelope fields that every fact repeats and no reader of `fact` needs.
_DROP = ("producer", "schema_version")
# Rebuilt from the entry and the state on re-emission, so not kept in the body.
_ENVELOPE = ("event_id", "type", "occurred_at", "bot_id", "telegram_user_id")
_START_KEEP = ("tracking_token",)
_PAYMENT_KEEP = ("tracking_token", "payment_id", "product_id", "amount_cents", "currency",
                 "payer", "paid_at", "refunded_at", "reason", "expired_at", "opened_at")
STAGE, SEEN, AT, VERDICT, BODY = range(5)

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
    return {"v": 2, "bot": None, "user": None, "f": {}}


def upcast(state: State) -> State:
    """A state of the first layout (full fact bodies and a separate `decided` map) in
    the compact one; compact states are returned as they are."""
    if "f" in state:
        return state
    facts: dict[str, list[Any]] = {}
    bot = user = None
    for event_id, f in state["facts"].items():
        body = f["body"]
        bot, user = body["bot_id"], body["telegram_user_id"]
        facts[event_id] = [f["stage"], f["seen_ms"], iso_to_ms(body["occurred_at"]),
                           state["decided"].get(event_id), _slim(f["stage"], body)]
    return {"v": 2, "bot": bot, "user": user, "f": facts}


def has_fact(state: State, event_id: str) -> bool:
    return event_id in upcast(state)["f"]


def add_fact(
    state: State, stage: str, fact: dict[str, Any], *, rule: Rule, now_ms: int, timeout_ms: int
) -> tuple[State, list[Assignment]]:
    """Record one fact (a JSON dict of a BotStarted, PixGenerated, ...) and re-decide.

    A fact already recorded (same event_id: a redelivery) changes nothing.
    """
    state = upcast(state)
    event_id = fact["event_id"]
    if event_id in state["f"]:
        return state, []
    body = {k: v for k, v in fact.items() if k not in _DROP}
    # A /start is decided once, on arrival (its own token), so its full body is only
    # needed now; later decisions read its time and token. Payment facts may be
    # re-emitted by a later re-decision: they keep what the projection and the
    # conversions read (gateway ids and URLs travel only with the first emission).
    facts = {k: list(v) for k, v in state["f"].items()}
    facts[event_id] = [stage, now_ms, iso_to_ms(fact["occurred_at"]), None, _slim(stage, fact)]
    new = {"v": 2, "bot": fact["bot_id"], "user": fact["telegram_user_id"], "f": facts}
    return _reassess(new, rule, now_ms, timeout_ms, fresh=(event_id, body))


def expire(state: State, *, rule: Rule, now_ms: int,
           timeout_ms: int) -> tuple[State, list[Assignment]]:
    """Re-decide with a later clock: facts waiting longer than the timeout become unattributed."""
    state = upcast(state)
    return _reassess({**state, "f": {k: list(v) for k, v in state["f"].items()}}, rule, now_ms,
                     timeout_ms)


def pending_count(state: State) -> int:
    return sum(1 for f in upcast(state)["f"].values() if f[VERDICT] is None)


def oldest_pending_ms(state: State) -> int | None:
    seen = [f[SEEN] for f in upcast(state)["f"].values() if f[VERDICT] is None]
    return min(seen) if seen else None


def decisions(state: State) -> dict[str, str]:
    """event_id -> token, ORGANIC or UNATTRIBUTED (pending facts are absent)."""
    return {k: f[VERDICT] for k, f in upcast(state)["f"].items() if f[VERDICT] is not None}


def _slim(stage: str, fact: dict[str, Any]) -> dict[str, Any]:
    keep = _START_KEEP if stage == "start" else _PAYMENT_KEEP
    body = {k: fact[k] for k in keep if fact.get(k) is not None}
    if isinstance(body.get("payer"), dict):
        body["payer"] = {k: v for k, v in body["payer"].items() if v is not None}
    return body


def _full_body(state: State, event_id: str, f: list[Any]) -> dict[str, Any]:
    return {"event_id": event_id, "type": f[STAGE], "occurred_at": ms_to_iso(f[AT]),
            "bot_id": state["bot"], "telegram_user_id": state["user"], **f[BODY]}


def _reassess(state: State, rule: Rule, now_ms: int, timeout_ms: int,
              fresh: tuple[str, dict[str, Any]] | None = None) -> tuple[State, list[Assignment]]:
    facts = state["f"]
    touches = sorted(Touch(f[AT], f[BODY]["tracking_token"]) for f in facts.values()
                     if f[STAGE] == "start" and f[BODY].get("tracking_token"))
    any_start = False
    wanted: dict[str, str] = {}
    payments: dict[str, list[tuple[str, list[Any]]]] = {}
    for event_id, f in facts.items():
        if f[STAGE] == "start":
            any_start = True
            wanted[event_id] = f[BODY].get("tracking_token") or ORGANIC
        elif f[STAGE] in PAYMENT_STAGES:
            payments.setdefault(f[BODY]["payment_id"], []).append((event_id, f))
    for members in payments.values():
        verdict = _decide_payment([f for _, f in members], touches, any_start, rule, now_ms,
                                  timeout_ms)
        if verdict is not None:
            for event_id, _ in members:
                wanted[event_id] = verdict

    out: list[Assignment] = []
    # Sorted so the emitted order is a function of the state, not of dict history.
    for event_id in sorted(wanted):
        verdict = wanted[event_id]
        f = facts[event_id]
        if f[VERDICT] == verdict:
            continue
        f[VERDICT] = verdict
        body = fresh[1] if fresh is not None and fresh[0] == event_id else _full_body(
            state, event_id, f)
        is_token = verdict not in (ORGANIC, UNATTRIBUTED)
        out.append(Assignment(
            stage=f[STAGE],
            source_event_id=event_id,
            token=verdict if is_token else None,
            kind=TOKEN if is_token else verdict,
            bot_id=int(state["bot"]),
            telegram_user_id=int(state["user"]),
            fact=body,
        ))
    return state, out


def _decide_payment(
    members: list[list[Any]],
    touches: list[Touch],
    any_start: bool,
    rule: Rule,
    now_ms: int,
    timeout_ms: int,
) -> str | None:
    by_stage = {f[STAGE]: f for f in members}
    # The payment is judged at the time its charge was created: every later fact of
    # the same payment (paid, refund, delivery) follows the charge's attribution.
    anchor = by_stage.get("pix_generated")
    anchor_ms = anchor[AT] if anchor is not None else min(f[AT] for f in members)
    fallback = (anchor[BODY].get("tracking_token") if anchor is not None else None) or (
        by_stage["paid"][BODY].get("tracking_token") if "paid" in by_stage else None)
    timed_out = now_ms - min(f[SEEN] for f in members) >= timeout_ms
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
