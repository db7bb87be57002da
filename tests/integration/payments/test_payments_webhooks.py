"""Gateway webhooks: verified, idempotent, order-independent, exactly one event each."""

import asyncio
import uuid

import orjson

from grim.sandbox.gateways import mercadopago_pay, pushinpay_pay, woovi_pay
from grim_payments.signatures import SANDBOX_HEADER, sign_mercadopago, sign_sandbox
from grim_schemas import PaymentConfirmed, PaymentRefunded

from .conftest import MP_SECRET, events_in


async def _mp_webhook(harness, account_id: int, data_id: str, secret: str = MP_SECRET):  # type: ignore[no-untyped-def]
    request_id = uuid.uuid4().hex
    headers = {"x-signature": sign_mercadopago(secret, data_id, request_id, "1742505638683"),
               "x-request-id": request_id}
    body = {"action": "payment.updated", "api_version": "v1", "type": "payment",
            "data": {"id": data_id}, "live_mode": False}
    return await harness.client.post(
        f"/webhooks/mercadopago/{account_id}?data.id={data_id}&type=payment",
        json=body, headers=headers)


async def _charge(harness, gateway: str):  # type: ignore[no-untyped-def]
    product = await harness.product(gateway)
    created = (await harness.charge(product)).json()
    row = await harness.row(created["payment_id"])
    return row


async def _facts(harness, payment_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    rows = await harness.app.state.payments.pool.fetch(
        "SELECT kind FROM payments.charge_facts WHERE charge_id = $1 ORDER BY kind", payment_id)
    return [r["kind"] for r in rows]


async def test_mercadopago_duplicates_and_out_of_order_give_one_event_each(harness) -> None:
    row = await _charge(harness, "mercadopago")
    mp = harness.fakes["mercadopago"]
    # A notification before the payment moved changes nothing.
    assert (await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])).json() == {
        "status": "duplicate"}
    mercadopago_pay(mp, row["gateway_charge_id"], payer={
        "first_name": "Ana", "last_name": "Lima", "email": "ana@example.com",
        "identification": {"type": "CPF", "number": "12345678909"}})
    results = await asyncio.gather(*(
        _mp_webhook(harness, row["account_id"], row["gateway_charge_id"]) for _ in range(5)))
    assert sorted(r.json()["status"] for r in results) == ["accepted"] + ["duplicate"] * 4
    mercadopago_pay(mp, row["gateway_charge_id"], status="refunded")
    assert (await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])).json()[
        "status"] == "accepted"
    # A late duplicate of the old notification, after the refund: nothing new.
    assert (await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])).json()[
        "status"] == "duplicate"
    assert await _facts(harness, row["id"]) == ["paid", "pending", "refunded"]
    assert (await harness.row(row["id"]))["status"] == "refunded"

    await harness.relay.relay_once()
    paid = await events_in(harness.settings, "paid", row["id"])
    refunded = await events_in(harness.settings, "refunded", row["id"])
    assert len(paid) == 1 and len(refunded) == 1
    event = paid[0]
    assert isinstance(event, PaymentConfirmed) and isinstance(refunded[0], PaymentRefunded)
    assert event.payer is not None and event.payer.email == "ana@example.com"
    assert event.payer.name == "Ana Lima" and event.payer.document == "12345678909"
    assert (event.amount_cents, event.product_id, event.tracking_token) == (
        1990, row["product_id"], row["tracking_token"])
    assert event.delivery_url and event.delivery_url.startswith("http://payments.test/delivery/")
    assert (event.bot_id, event.telegram_user_id) == (row["bot_id"], row["telegram_user_id"])


async def test_refund_seen_first_still_records_the_payment_once(harness) -> None:
    row = await _charge(harness, "mercadopago")
    mercadopago_pay(harness.fakes["mercadopago"], row["gateway_charge_id"])
    mercadopago_pay(harness.fakes["mercadopago"], row["gateway_charge_id"], status="refunded")
    for _ in range(2):
        await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])
    assert await _facts(harness, row["id"]) == ["paid", "pending", "refunded"]
    await harness.relay.relay_once()
    assert len(await events_in(harness.settings, "paid", row["id"])) == 1
    assert len(await events_in(harness.settings, "refunded", row["id"])) == 1


async def test_forged_signatures_are_refused_and_change_nothing(harness) -> None:
    row = await _charge(harness, "mercadopago")
    mercadopago_pay(harness.fakes["mercadopago"], row["gateway_charge_id"])
    forged = await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"],
                               secret="guessed-secret")
    assert forged.status_code == 401 and forged.json()["error"] == "unauthorized"
    unsigned = await harness.client.post(
        f"/webhooks/mercadopago/{row['account_id']}?data.id={row['gateway_charge_id']}"
        "&type=payment", json={"type": "payment", "data": {"id": row["gateway_charge_id"]}})
    assert unsigned.status_code == 401
    assert await _facts(harness, row["id"]) == ["pending"]
    outbox = await harness.app.state.payments.pool.fetchval(
        "SELECT count(*) FROM outbox.events WHERE event_id = $1", f"paid_{row['id']}")
    assert outbox == 0
    wrong_gateway = await harness.client.post(f"/webhooks/pushinpay/{row['account_id']}",
                                              json={"id": row["gateway_charge_id"]})
    assert wrong_gateway.status_code == 404
    assert (await harness.client.post("/webhooks/paypal/1", json={})).status_code == 404


async def test_sandbox_signature_is_checked_and_the_charge_refetched(harness) -> None:
    row = await _charge(harness, "sandbox")
    body = orjson.dumps({"id": "evt_x", "type": "charge.paid",
                         "data": {"id": row["gateway_charge_id"]}})
    url = f"/webhooks/sandbox/{row['account_id']}"
    bad = await harness.client.post(url, content=body, headers={
        SANDBOX_HEADER: sign_sandbox("wrong", body), "content-type": "application/json"})
    assert bad.status_code == 401
    # Correctly signed, but the sandbox says the charge is still pending: nothing changes.
    from .conftest import SANDBOX_SECRET
    good = await harness.client.post(url, content=body, headers={
        SANDBOX_HEADER: sign_sandbox(SANDBOX_SECRET, body), "content-type": "application/json"})
    assert good.json() == {"status": "duplicate"}
    assert await _facts(harness, row["id"]) == ["pending"]


async def test_unsigned_gateways_are_trusted_only_through_refetch(harness) -> None:
    row = await _charge(harness, "pushinpay")
    url = f"/webhooks/pushinpay/{row['account_id']}"
    # A webhook claiming payment while PushinPay says "created": nothing changes.
    claim = await harness.client.post(url, json={"id": row["gateway_charge_id"],
                                                 "status": "paid", "value": 1990})
    assert claim.json() == {"status": "duplicate"}
    # An id PushinPay does not know (but we do): unverifiable.
    harness.fakes["pushinpay"].state.fake.charges.pop(row["gateway_charge_id"].lower())
    assert (await harness.client.post(url, json={"id": row["gateway_charge_id"]})).status_code \
        == 403
    # Unknown everywhere: ignored, so the gateway stops retrying.
    assert (await harness.client.post(url, json={"id": "nope"})).json() == {"status": "ignored"}

    paid = await _charge(harness, "pushinpay")
    pushinpay_pay(harness.fakes["pushinpay"], paid["gateway_charge_id"], payer_name="JOAO S")
    form = await harness.client.post(f"/webhooks/pushinpay/{paid['account_id']}",
                                     data={"id": paid["gateway_charge_id"].upper(),
                                           "status": "paid"})
    assert form.json() == {"status": "accepted"}

    woovi = await _charge(harness, "woovi")
    woovi_pay(harness.fakes["woovi"], woovi["gateway_charge_id"],
              customer={"name": "Bia", "email": "bia@example.com"})
    notification = {"event": "OPENPIX:CHARGE_COMPLETED",
                    "charge": {"correlationID": woovi["gateway_charge_id"], "status": "COMPLETED"}}
    wurl = f"/webhooks/woovi/{woovi['account_id']}"
    assert (await harness.client.post(wurl, json=notification)).json() == {"status": "accepted"}
    assert (await harness.client.post(wurl, json=notification)).json() == {"status": "duplicate"}
    harness.fakes["woovi"].state.fake.fail_next.append(500)
    assert (await harness.client.post(wurl, json=notification)).status_code == 503

    await harness.relay.relay_once()
    events = await events_in(harness.settings, "paid", woovi["id"])
    assert len(events) == 1 and events[0].payer.email == "bia@example.com"
    assert len(await events_in(harness.settings, "paid", paid["id"])) == 1


async def test_a_payment_of_another_amount_is_not_taken_as_paid(harness) -> None:
    row = await _charge(harness, "mercadopago")
    mercadopago_pay(harness.fakes["mercadopago"], row["gateway_charge_id"])
    harness.fakes["mercadopago"].state.fake.charges[row["gateway_charge_id"]][
        "transaction_amount"] = 0.5
    response = await _mp_webhook(harness, row["account_id"], row["gateway_charge_id"])
    assert response.json() == {"status": "amount_mismatch"}
    assert await _facts(harness, row["id"]) == ["pending"]
