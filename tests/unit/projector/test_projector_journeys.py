"""The per-token step and conversion building (pure), and order independence end to end."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from grim_projector import bot_users, journeys
from grim_projector.conversions import reais
from grim_schemas import ConversionRequested, StageAttributed, encode
from grim_schemas.events import ClickCookiesReported, ClickRecorded, Payer, PaymentConfirmed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .funnels import PIXEL, build
from .sim import Simulation

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
TOKEN = "d" * 32
CTX = journeys.Context(rule_version=1, projection_version="v", now_ms=0, wait_timeout_ms=1000)


def _model(conv: dict) -> ConversionRequested:
    """The conversion as the dispatcher reads it; its dict must be the model's own dump."""
    model = ConversionRequested.model_validate(conv)
    assert orjson.loads(encode(model)) == conv
    return model


def _click(**kw) -> dict:
    data = {"producer": "r", "occurred_at": T0, "tracking_token": TOKEN,
            "pageview_event_id": f"evt_{TOKEN}", "pool_id": 1, "pool_slug": "p", "bot_id": 1,
            "bot_username": "b", "pixel_id": PIXEL, "fbc": "fb.1.1.abc", "fbp": "fb.1.1.xyz",
            "client_ip": "198.51.100.1", "user_agent": "UA/1", "landing_url": "https://l/go/p"}
    data.update(kw)
    return ClickRecorded(**data).model_dump(mode="json")


def _paid_attributed(token: str | None = TOKEN, kind: str = "token") -> dict:
    paid = PaymentConfirmed(
        producer="p", occurred_at=T0 + timedelta(hours=1), bot_id=1, telegram_user_id=2,
        payment_id="pay1", gateway="sandbox", gateway_event_id="g", amount_cents=1990,
        paid_at=T0 + timedelta(hours=1), product_id=9,
        payer=Payer(name="Ana Maria Souza", email="ana@example.com", phone="+5511988887777"))
    return StageAttributed(
        event_id=journeys.attribution_event_id(paid.event_id, kind, token), producer="projector",
        stage="paid", source_event_id=paid.event_id, tracking_token=token, bot_id=1,
        telegram_user_id=2, rule_version=1, fact=paid.model_dump(mode="json")).model_dump(
            mode="json")


def test_purchase_before_click_waits_and_is_emitted_with_the_click() -> None:
    state, fx = journeys.on_attributed(journeys.new_state(), _paid_attributed(), CTX)
    assert fx.conversions == [] and journeys.waiting_count(state) == 1
    assert fx.payment_rows[0]["paid_at"] and fx.fact_rows[0]["attribution"] == "token"
    cookies = ClickCookiesReported(producer="r", tracking_token=TOKEN, fbp="fb.1.2.cookie",
                                   fbc=None).model_dump(mode="json")
    state, _ = journeys.on_cookies(state, cookies, CTX)
    state, fx = journeys.on_click(state, _click(), CTX)
    by_name = {c["event_name"]: _model(c) for c in fx.conversions}
    assert set(by_name) == {"PageView", "Purchase"}
    purchase = by_name["Purchase"]
    assert purchase.event_id == "purchase_pay1" and purchase.pixel_id == PIXEL
    assert purchase.custom_data == {"value": 19.9, "currency": "BRL", "order_id": "pay1",
                                    "contents": [{"id": "9", "quantity": 1}]}
    ud = purchase.user_data
    assert (ud.fbp, ud.fbc) == ("fb.1.2.cookie", "fb.1.1.abc")  # cookie wins, else the click's
    assert (ud.em, ud.fn, ud.ln, ud.external_id) == ("ana@example.com", "Ana", "Souza", "1:2")
    assert purchase.event_source_url == "https://l/go/p"
    page_view = by_name["PageView"]
    assert (page_view.event_id, page_view.action_source) == (f"evt_{TOKEN}", "website")
    assert page_view.event_time == T0
    # A redelivered click or fact emits nothing again.
    state, fx = journeys.on_click(state, _click(), CTX)
    assert fx.conversions == []
    state, fx = journeys.on_attributed(state, _paid_attributed(), CTX)
    assert fx.conversions == [] and fx.payment_rows


def test_crawlers_organic_and_pixelless_clicks_send_nothing() -> None:
    state, fx = journeys.on_click(journeys.new_state(), _click(is_crawler=True), CTX)
    state, fx2 = journeys.on_attributed(state, _paid_attributed(), CTX)
    assert fx.conversions == fx2.conversions == []
    state, fx = journeys.on_click(journeys.new_state(), _click(pixel_id=None), CTX)
    assert fx.conversions == [] and fx.token_rows
    _, fx = journeys.on_attributed(journeys.new_state(), _paid_attributed(None, "organic"), CTX)
    assert fx.conversions == [] and fx.payment_rows[0]["attribution"] == "organic"


def test_a_fact_waiting_past_the_timeout_is_dropped() -> None:
    state, _ = journeys.on_attributed(journeys.new_state(), _paid_attributed(), CTX)
    later = journeys.Context(1, "v", now_ms=1000, wait_timeout_ms=1000)
    state, fx = journeys.on_click(state, _click(), later)
    assert fx.dropped_waiting == 1
    assert [c["event_name"] for c in fx.conversions] == ["PageView"]


def test_value_in_reais_is_exact() -> None:
    assert (reais(1990), reais(2000), reais(1), reais(123456)) == (19.9, 20, 0.01, 1234.56)


async def _run(messages, seed: int, rule: int = 1) -> dict:
    sim = Simulation(rule)
    await sim.feed(messages, random.Random(seed))
    return sim.projection.summary()


EVENTS, EXPECTED = build(12, 2, seed=3, second_touch_every=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(range(len(EVENTS))), seed=st.integers(0, 2**16),
       dup=st.lists(st.integers(0, len(EVENTS) - 1), max_size=8))
async def test_any_interleaving_with_duplicates_gives_the_same_projection(order, seed, dup) -> None:
    sim = Simulation()
    messages = [sim.message(EVENTS[i]) for i in order] + [sim.message(EVENTS[i]) for i in dup]
    await sim.feed(messages, random.Random(seed))
    summary = sim.projection.summary()
    payments = {k: (v["tracking_token"], v["attribution"]) for k, v in summary["payments"].items()}
    assert payments == EXPECTED.payments
    assert set(summary["conversions"]) == EXPECTED.conversions
    sent = [c.event_id for c in sim.conversions()]
    assert len(sent) == len(set(sent))  # no conversion emitted twice, whatever the order
    reference = await _run([sim.message(e) for e in EVENTS], 0)
    assert summary == reference


async def test_rule_v2_credits_the_first_touch_of_second_touch_users() -> None:
    sim = Simulation()
    messages = [sim.message(e) for e in EVENTS]
    v1 = await _run(messages, 1, rule=1)
    v2 = await _run(messages, 1, rule=2)
    changed = {k for k in v1["payments"]
               if v1["payments"][k]["tracking_token"] != v2["payments"][k]["tracking_token"]}
    assert changed == {f"pay_{i:05d}" for i in range(12) if i % 3 == 1}


async def test_attributed_records_built_on_the_hot_path_are_valid_stage_attributed() -> None:
    sim = Simulation()
    await sim.feed([sim.message(e) for e in EVENTS[:40]])
    attributed = [m for m in sim.sent if m.topic == sim.settings.attributed_topic()]
    assert attributed
    for message in attributed:
        event = StageAttributed.model_validate_json(message.value)
        assert message.key == (event.tracking_token or f"organic:{event.bot_id}").encode()
        assert event.producer == "projector" and event.rule_version == 1


async def test_a_malformed_record_is_dead_lettered_not_dropped() -> None:
    from .sim import FakeEvent, Message

    sim = Simulation()
    bad = Message(sim.settings.topic("paid"), b"1:2", b'{"type": "paid", "bot_id": "x"}')
    await sim.handlers.bot_user_batch([FakeEvent(bad)])
    parked = [m for m in sim.sent if m.topic == sim.settings.topic("dead-letters")]
    assert len(parked) == 1 and b"bot_id" in parked[0].value
    assert sim.tables.bot_users == {}


async def test_state_is_kept_only_after_the_effects_succeeded() -> None:
    from aiokafka.errors import KafkaTimeoutError

    from .sim import FakeEvent

    sim = Simulation()

    async def broken_send(topic, key, value):
        raise KafkaTimeoutError()

    sim.handlers.send = broken_send
    start = next(e for e in EVENTS if e.type == "start")
    with pytest.raises(KafkaTimeoutError):
        await sim.handlers.bot_user_batch([FakeEvent(sim.message(start))])
    # Nothing recorded: the redelivered batch will be handled in full.
    assert sim.tables.bot_users == {}


async def test_a_tick_decides_a_fact_that_waited_past_the_timeout() -> None:
    from grim_schemas.events import PixGenerated

    from .sim import FakeEvent, Message

    sim = Simulation(projector_pending_timeout_s=0.001)
    pix = PixGenerated(producer="p", bot_id=5, telegram_user_id=6, payment_id="lonely",
                       product_id=1, amount_cents=500, gateway="sandbox", gateway_charge_id="c")
    sim.handlers.settings = sim.settings.model_copy(update={"projector_pending_timeout_s": 3600})
    await sim.handlers.bot_user_batch([FakeEvent(sim.message(pix))])
    assert sim.attributed_queue == [] and sim.handlers.pending_keys.keys() == {"5:6"}
    assert sim.handlers.due_ticks(10**15) == ["5:6"]
    sim.handlers.settings = sim.settings
    for fact in sim.tables.bot_users["5:6"]["f"].values():
        fact[bot_users.SEEN] = 0  # as if it arrived long ago
    tick = Message(sim.settings.ticks_topic(), b"5:6", b"{}")
    await sim.feed([tick])
    assert sim.projection.payments["lonely"]["attribution"] == "unattributed"
    assert sim.handlers.pending_keys == {}


async def test_replay_from_skips_payments_before_it_but_keeps_the_click_window() -> None:
    cut = max(e.occurred_at for e in EVENTS if e.type == "paid") - timedelta(minutes=30)
    sim = Simulation(projector_replay_from=cut)
    await sim.feed([sim.message(e) for e in EVENTS])
    kept = {k for k, v in sim.projection.payments.items() if v["pix_at"] or v["paid_at"]}
    late = {e.payment_id for e in EVENTS
            if e.type in ("pix_generated", "paid") and e.occurred_at >= cut}
    assert kept == late and late
    # Their /starts were before the cut but inside the click window: still attributed.
    assert all(sim.projection.payments[p]["attribution"] != "unattributed" for p in kept
               if not p.startswith("org_"))


async def test_transient_batch_failures_are_retried_and_bugs_exit_without_ack(monkeypatch) -> None:
    from aiokafka.errors import KafkaConnectionError
    from grim_projector import batches

    calls: list[int] = []

    async def flaky(events) -> None:
        calls.append(len(events))
        if len(calls) < 3:
            raise KafkaConnectionError()

    await batches.handle_or_exit(flaky, [1, 2], backoff_max=0.01)
    assert calls == [2, 2, 2]

    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(batches.os, "_exit", fake_exit)

    async def buggy(events) -> None:
        raise KeyError("bug")

    with pytest.raises(SystemExit):
        await batches.handle_or_exit(buggy, [1])
    assert exits == [70]


async def test_every_published_conversion_is_the_models_own_json() -> None:
    sim = Simulation()
    await sim.feed([sim.message(e) for e in EVENTS])
    sent = [m for m in sim.sent if m.topic == sim.settings.topic("conversions")]
    assert {orjson.loads(m.value)["event_name"] for m in sent} == {
        "PageView", "ViewContent", "InitiateCheckout", "Purchase"}
    for m in sent:
        model = ConversionRequested.model_validate_json(m.value)
        assert orjson.loads(m.value) == orjson.loads(encode(model))
        assert m.key == model.tracking_token.encode()
