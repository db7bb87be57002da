"""Attribution rules and the per-bot-user step (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from grim_projector import bot_users
from grim_projector.rules import CLICK_WINDOW_MS, Touch, first_touch, last_touch, rule_for
from grim_schemas.events import BotStarted, PaymentConfirmed, PixGenerated

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
A, B, C = "a" * 32, "b" * 32, "c" * 32
FACT_MS = 10 * CLICK_WINDOW_MS


def test_last_touch_takes_the_latest_start_before_the_fact() -> None:
    touches = [Touch(FACT_MS - 3000, A), Touch(FACT_MS - 2000, B), Touch(FACT_MS + 1, C)]
    assert last_touch(touches, FACT_MS, None).token == B
    assert first_touch(touches, FACT_MS, None).token == A


def test_window_edges_are_inclusive() -> None:
    assert last_touch([Touch(FACT_MS - CLICK_WINDOW_MS, A)], FACT_MS, None).token == A
    assert last_touch([Touch(FACT_MS - CLICK_WINDOW_MS - 1, A)], FACT_MS, None) is None
    assert last_touch([Touch(FACT_MS, A)], FACT_MS, None).token == A


def test_fallback_is_the_funnel_token_and_same_ms_ties_are_deterministic() -> None:
    decision = last_touch([Touch(FACT_MS - CLICK_WINDOW_MS - 1, A)], FACT_MS, C)
    assert (decision.token, decision.reason) == (C, "fallback")
    tie = [Touch(FACT_MS - 5, B), Touch(FACT_MS - 5, A)]
    assert last_touch(tie, FACT_MS, None) == last_touch(list(reversed(tie)), FACT_MS, None)


def test_unknown_rule_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule version"):
        rule_for(99)


def _start(token: str | None, at: datetime, n: int = 1) -> dict:
    return BotStarted(producer="t", occurred_at=at, bot_id=1, telegram_user_id=2, chat_id=2,
                      update_id=n, tracking_token=token, payload=token).model_dump(mode="json")


def _pix(token: str | None, at: datetime, pid: str = "p1") -> dict:
    return PixGenerated(producer="t", occurred_at=at, bot_id=1, telegram_user_id=2,
                        payment_id=pid, product_id=3, amount_cents=1990, gateway="sandbox",
                        gateway_charge_id="c", tracking_token=token).model_dump(mode="json")


def _paid(at: datetime, pid: str = "p1") -> dict:
    return PaymentConfirmed(producer="t", occurred_at=at, bot_id=1, telegram_user_id=2,
                            payment_id=pid, gateway="sandbox", gateway_event_id="g",
                            amount_cents=1990, paid_at=at).model_dump(mode="json")


def _add(state, stage, fact, now=0, timeout=1000, rule=1):
    return bot_users.add_fact(state, stage, fact, rule=rule_for(rule), now_ms=now,
                              timeout_ms=timeout)


def test_paid_before_pix_waits_then_follows_the_charge() -> None:
    state, out = _add(bot_users.new_state(), "paid", _paid(T0 + timedelta(minutes=5)))
    assert out == [] and bot_users.pending_count(state) == 1
    state, out = _add(state, "pix_generated", _pix(A, T0 + timedelta(minutes=1)))
    assert out == []  # the funnel's token has a /start we have not seen yet
    state, out = _add(state, "start", _start(A, T0))
    assert {(a.stage, a.token, a.kind) for a in out} == {
        ("start", A, "token"), ("pix_generated", A, "token"), ("paid", A, "token")}
    assert bot_users.pending_count(state) == 0


def test_redelivered_fact_changes_nothing() -> None:
    fact = _start(A, T0)
    state, out = _add(bot_users.new_state(), "start", fact)
    assert len(out) == 1
    again, out = _add(state, "start", dict(fact))
    assert out == [] and again is state


def test_multiple_touches_credit_the_last_start_before_the_charge() -> None:
    state, _ = _add(bot_users.new_state(), "start", _start(A, T0, 1))
    state, _ = _add(state, "start", _start(B, T0 + timedelta(hours=1), 2))
    state, _ = _add(state, "start", _start(C, T0 + timedelta(hours=3), 3))
    state, out = _add(state, "pix_generated", _pix(B, T0 + timedelta(hours=2)))
    assert [(a.token, a.kind) for a in out] == [(B, "token")]
    undecided = {**state, "f": {k: [*f[:bot_users.VERDICT], None, f[bot_users.BODY]]
                                for k, f in state["f"].items()}}
    _, out_v2 = _add(undecided, "paid", _paid(T0 + timedelta(hours=2, minutes=1)), rule=2)
    assert {a.token for a in out_v2 if a.stage != "start"} == {A}


def test_organic_user_and_timeout_to_unattributed() -> None:
    state, out = _add(bot_users.new_state(), "start", _start(None, T0))
    assert [(a.token, a.kind) for a in out] == [(None, "organic")]
    state, out = _add(state, "pix_generated", _pix(None, T0 + timedelta(minutes=1)))
    assert [(a.token, a.kind) for a in out] == [(None, "organic")]

    lone, out = _add(bot_users.new_state(), "pix_generated", _pix(None, T0), now=0, timeout=1000)
    assert out == []
    lone, out = bot_users.expire(lone, rule=rule_for(1), now_ms=999, timeout_ms=1000)
    assert out == []
    lone, out = bot_users.expire(lone, rule=rule_for(1), now_ms=1000, timeout_ms=1000)
    assert [(a.token, a.kind) for a in out] == [(None, "unattributed")]
    # The start arrives after all: the sale is re-attributed to its token.
    lone, out = _add(lone, "start", _start(A, T0 - timedelta(minutes=1)), now=2000)
    assert {(a.stage, a.token) for a in out} == {("start", A), ("pix_generated", A)}


def test_waiting_for_the_funnel_token_gives_up_at_the_timeout() -> None:
    state, out = _add(bot_users.new_state(), "pix_generated", _pix(A, T0), now=0, timeout=50)
    assert out == []
    state, out = bot_users.expire(state, rule=rule_for(1), now_ms=50, timeout_ms=50)
    assert [(a.token, a.kind) for a in out] == [(A, "token")]


def _first_layout(facts: list[tuple[str, dict]], decided: dict[str, str]) -> dict:
    """A state as the first release of the worker wrote it to the changelog."""
    keep = ("event_id", "type", "occurred_at", "tracking_token", "bot_id", "telegram_user_id",
            "payment_id", "product_id", "amount_cents", "currency", "payer", "paid_at")
    return {"facts": {f["event_id"]: {"stage": stage, "seen_ms": 0,
                                      "body": {k: f[k] for k in keep if f.get(k) is not None}}
                      for stage, f in facts},
            "decided": decided}


def test_a_state_of_the_first_layout_decides_like_the_compact_one() -> None:
    start, pix, paid = _start(A, T0), _pix(A, T0 + timedelta(minutes=1)), _paid(T0)
    old = _first_layout([("start", start), ("pix_generated", pix)],
                        {start["event_id"]: A, pix["event_id"]: A})
    new, _ = _add(bot_users.new_state(), "start", start)
    new, _ = _add(new, "pix_generated", pix)
    assert bot_users.decisions(old) == bot_users.decisions(new)
    assert bot_users.has_fact(old, pix["event_id"]) and bot_users.pending_count(old) == 0
    _, from_old = _add(old, "paid", paid)
    _, from_new = _add(new, "paid", paid)
    assert from_old == from_new and [(a.stage, a.token) for a in from_old] == [("paid", A)]
    # A later /start re-decides the charge: the re-emitted fact is rebuilt in full.
    _, moved = _add(old, "start", _start(B, T0 + timedelta(seconds=30), 2))
    pix_again = next(a for a in moved if a.stage == "pix_generated")
    assert pix_again.token == B
    assert {k: pix_again.fact[k] for k in ("event_id", "type", "occurred_at", "bot_id",
                                           "telegram_user_id", "payment_id", "amount_cents")} == {
        k: pix[k] for k in ("event_id", "type", "occurred_at", "bot_id", "telegram_user_id",
                            "payment_id", "amount_cents")}


def test_the_state_keeps_each_fact_once_and_without_its_envelope() -> None:
    state, _ = _add(bot_users.new_state(), "pix_generated", _pix(A, T0))
    state, _ = _add(state, "start", _start(A, T0 - timedelta(minutes=1)))
    (entry,) = [f for f in state["f"].values() if f[bot_users.STAGE] == "pix_generated"]
    assert entry[bot_users.VERDICT] == A
    assert set(entry[bot_users.BODY]) == {"tracking_token", "payment_id", "product_id",
                                          "amount_cents", "currency"}
