"""The state machine on the real store: random orderings, duplicates, concurrency."""

import asyncio
import random
import uuid
from collections import Counter
from datetime import timedelta

from grim_payments import repository
from grim_payments.gateway_base import CreatedCharge
from grim_payments.state import FACTS, state_of
from grim_payments.transitions import FactDetails, apply_facts
from grim_schemas.base import utcnow


async def _new_charge(harness, product_id: int) -> str:  # type: ignore[no-untyped-def]
    pool = harness.app.state.payments.pool
    product = await pool.fetchrow("SELECT * FROM payments.products WHERE id = $1", product_id)
    charge_id = f"pay_{uuid.uuid4().hex}"
    draft = repository.Charge(
        id=charge_id, idempotency_key=uuid.uuid4().hex, request_hash="x", product_id=product_id,
        product_name=product["name"], amount_cents=product["price_cents"], currency="BRL",
        bot_id=1, telegram_user_id=2, chat_id=2, tracking_token=None,
        account_id=product["gateway_account_id"], gateway="sandbox", gateway_charge_id=None,
        pix_copy_paste=None, qr_png_base64=None, expires_at=utcnow() + timedelta(hours=1),
        status="created", last_error=None)
    async with pool.acquire() as conn:
        await repository.insert_if_new(conn, draft)
        await repository.mark_issued(conn, charge_id, CreatedCharge(f"g{uuid.uuid4().hex}",
                                                                    "000201", None))
    return charge_id


async def _apply(harness, charge_id: str, fact: str) -> None:  # type: ignore[no-untyped-def]
    pool = harness.app.state.payments.pool
    async with pool.acquire() as conn, conn.transaction():
        await apply_facts(conn, harness.app.state.payments.outbox, charge_id, [fact],
                          FactDetails(gateway_event_id=f"g:{fact}", paid_at=utcnow()),
                          harness.settings.delivery_url)


async def test_random_concurrent_orderings_record_each_fact_and_event_once(harness) -> None:
    rng = random.Random(20261122)
    product = await harness.product("sandbox")
    pool = harness.app.state.payments.pool
    for _ in range(25):
        facts = [rng.choice(FACTS) for _ in range(rng.randint(1, 8))]
        facts += rng.sample(facts, k=len(facts) // 2)  # duplicates
        rng.shuffle(facts)
        charge_id = await _new_charge(harness, product)
        await asyncio.gather(*(_apply(harness, charge_id, f) for f in facts))

        row = await harness.row(charge_id)
        assert row["status"] == state_of(facts)
        stored = Counter(r["kind"] for r in await pool.fetch(
            "SELECT kind FROM payments.charge_facts WHERE charge_id = $1", charge_id))
        assert all(n == 1 for n in stored.values())
        events = Counter(r["event_id"].split("_pay_")[0] for r in await pool.fetch(
            "SELECT event_id FROM outbox.events WHERE event_id LIKE $1", f"%{charge_id}"))
        assert all(n == 1 for n in events.values()), events
        assert ("paid" in events) == ("paid" in facts)
        tokens = await pool.fetchval(
            "SELECT count(*) FROM payments.delivery_tokens WHERE charge_id = $1", charge_id)
        assert tokens == (1 if "paid" in facts else 0)
