"""Sandbox flow, delivery page, outbox through a Kafka outage, expiry reconciliation."""

import asyncio
from datetime import timedelta

from grim.sandbox.gateways import mercadopago_pay
from grim_schemas import DeliveryOpened, PaymentExpired
from grim_schemas.base import utcnow
from tests.support import wait_for

from .conftest import events_in, make_harness


async def test_sandbox_payment_fires_a_signed_webhook_and_delivery_opens_once(harness) -> None:
    product = await harness.product("sandbox", price_cents=2990)
    payment_id = (await harness.charge(product)).json()["payment_id"]
    sandbox = harness.http
    simulated = await sandbox.post(
        f"http://sandbox.fake/v1/charges/{payment_id}/simulate-payment",
        json={"payer": {"name": "Carla", "email": "carla@example.com"}})
    assert simulated.status_code == 200, simulated.text
    assert simulated.json()["webhook"]["status"] == 200
    charge_id = simulated.json()["charge"]["id"]
    resent = await sandbox.post(f"http://sandbox.fake/v1/charges/{charge_id}/resend-webhook")
    assert resent.json()["webhook"]["status"] == 200
    assert (await harness.row(payment_id))["status"] == "paid"

    await harness.relay.relay_once()
    [paid] = await events_in(harness.settings, "paid", payment_id)
    assert paid.payer.name == "Carla" and paid.gateway == "sandbox"
    path = paid.delivery_url.removeprefix("http://payments.test")
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 32
    stored = await harness.app.state.payments.pool.fetchval(
        "SELECT count(*) FROM payments.delivery_tokens WHERE token_hash = $1", token.encode())
    assert stored == 0  # only a hash is stored

    pages = await asyncio.gather(*(harness.client.get(path) for _ in range(3)))
    assert all(p.status_code == 200 for p in pages)
    assert "https://cursos.example/acesso" in pages[0].text
    assert (await harness.client.get("/delivery/" + "A" * 32)).status_code == 404
    assert (await harness.client.get("/delivery/short")).status_code == 404
    await harness.relay.relay_once()
    opened = await events_in(harness.settings, "delivered", payment_id)
    assert len(opened) == 1 and isinstance(opened[0], DeliveryOpened)

    refund = await sandbox.post(f"http://sandbox.fake/v1/charges/{charge_id}/refund",
                                headers={"Authorization": "Bearer sandbox-key-1"})
    assert refund.json()["webhook"]["status"] == 200
    assert (await harness.client.get(path)).status_code == 404  # revoked with the refund


async def test_kafka_down_webhook_succeeds_and_event_is_published_once_later(
    grim_settings, pg_pool, publisher
) -> None:
    # The service's own producer points at a dead port: Kafka is "down" for it.
    async with make_harness(grim_settings, pg_pool, publisher,
                            kafka_bootstrap="127.0.0.1:9") as harness:
        row_product = await harness.product("mercadopago")
        payment_id = (await harness.charge(row_product)).json()["payment_id"]
        row = await harness.row(payment_id)
        mercadopago_pay(harness.fakes["mercadopago"], row["gateway_charge_id"])
        from .test_payments_webhooks import _mp_webhook

        response = await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])
        assert response.json() == {"status": "accepted"}
        ready = await harness.client.get("/readyz")
        assert ready.status_code == 503
        pending = await pg_pool.fetchval(
            "SELECT count(*) FROM outbox.events WHERE event_id = $1 AND published_at IS NULL",
            f"paid_{payment_id}")
        assert pending == 1
        assert await events_in(grim_settings, "paid", payment_id) == []
    # Kafka is back (a relay that can reach it): published exactly once, even if run twice.
    relay = harness.relay
    await relay.relay_once()
    await relay.relay_once()
    assert len(await events_in(grim_settings, "paid", payment_id)) == 1
    assert len(await events_in(grim_settings, "pix-generated", payment_id)) == 1


async def test_expired_charges_are_reconciled_and_a_late_payment_still_counts(harness) -> None:
    product = await harness.product("mercadopago")
    first = (await harness.charge(product)).json()["payment_id"]
    second = (await harness.charge(product)).json()["payment_id"]
    pool = harness.app.state.payments.pool
    await pool.execute("UPDATE payments.charges SET expires_at = $2 WHERE id = ANY($1)",
                       [first, second], utcnow() - timedelta(minutes=5))
    # The second was paid but its webhook was lost: reconciliation finds it.
    second_row = await harness.row(second)
    mercadopago_pay(harness.fakes["mercadopago"], second_row["gateway_charge_id"])
    reconciler = harness.app.state.payments.reconciler
    assert await reconciler.run_once() == 2
    assert await reconciler.run_once() == 0
    assert (await harness.row(first))["status"] == "expired"
    assert (await harness.row(second))["status"] == "paid"

    # The buyer pays the expired charge after all: paid wins, both facts announced once.
    first_row = await harness.row(first)
    mercadopago_pay(harness.fakes["mercadopago"], first_row["gateway_charge_id"])
    from .test_payments_webhooks import _mp_webhook

    assert (await _mp_webhook(harness, first_row["account_id"],
                              first_row["gateway_charge_id"])).json()["status"] == "accepted"
    await harness.relay.relay_once()
    expired = await events_in(harness.settings, "expired", first)
    assert len(expired) == 1 and isinstance(expired[0], PaymentExpired)
    assert len(await events_in(harness.settings, "paid", first)) == 1
    assert len(await events_in(harness.settings, "paid", second)) == 1
    assert await events_in(harness.settings, "expired", second) == []


async def test_background_relay_publishes_without_help(grim_settings, pg_pool, publisher) -> None:
    async with make_harness(grim_settings, pg_pool, publisher,
                            kafka_bootstrap=grim_settings.kafka_bootstrap) as harness:
        product = await harness.product("woovi")
        payment_id = (await harness.charge(product)).json()["payment_id"]

        async def published() -> bool:
            return len(await events_in(grim_settings, "pix-generated", payment_id)) == 1

        await wait_for(published, timeout=20, message="PixGenerated from the running relay")

        async def ready() -> bool:
            return (await harness.client.get("/readyz")).status_code == 200

        await wait_for(ready, timeout=20, message="/readyz once the producer connected")
        metrics = (await harness.client.get("/metrics")).text
        assert 'grim_payments_charges_created_total{gateway="woovi",outcome="created"}' in metrics
