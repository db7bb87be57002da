"""POST /charges against the real Postgres/Kafka and the strict fake gateways."""

import asyncio
import base64
import uuid

from grim_payments.brcode import parse
from grim_schemas import PixGenerated

from .conftest import events_in


async def test_twenty_concurrent_retries_make_one_charge_and_one_event(harness) -> None:
    product = await harness.product("mercadopago", price_cents=4990)
    key = uuid.uuid4().hex
    token = uuid.uuid4().hex
    responses = await asyncio.gather(*(harness.charge(product, key, tracking_token=token)
                                       for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    bodies = [r.json() for r in responses]
    assert len({b["payment_id"] for b in bodies}) == 1
    body = bodies[0]
    assert (body["status"], body["amount_cents"], body["currency"]) == ("pending", 4990, "BRL")
    assert parse(body["pix_copy_paste"])["54"] == "49.90"
    assert base64.b64decode(body["qr_png_base64"]).startswith(b"\x89PNG")
    assert len(harness.fakes["mercadopago"].state.fake.creations()) == 1

    await harness.relay.relay_once()
    await harness.relay.relay_once()
    events = await events_in(harness.settings, "pix-generated", body["payment_id"])
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, PixGenerated)
    assert (event.amount_cents, event.gateway, event.tracking_token, event.product_id) == (
        4990, "mercadopago", token, product)
    assert event.producer == "payments"


async def test_gateway_failure_is_a_502_and_a_retry_recovers_the_same_charge(harness) -> None:
    product = await harness.product("pushinpay")
    fake = harness.fakes["pushinpay"].state.fake
    fake.fail_next.append(503)
    key = uuid.uuid4().hex
    failed = await harness.charge(product, key)
    assert failed.status_code == 502
    assert failed.json()["error"] == "error" and "503" in failed.json()["detail"]

    retried = await harness.charge(product, key)
    assert retried.status_code == 201
    again = await harness.charge(product, key)
    assert again.status_code == 200
    assert again.json()["payment_id"] == retried.json()["payment_id"]
    assert len([c for c in fake.calls if c["method"] == "POST"]) == 2  # the failed one + one
    assert len(fake.charges) == 1


async def test_bad_requests_are_refused_with_reasons(harness) -> None:
    product = await harness.product("woovi")
    key = uuid.uuid4().hex
    assert (await harness.charge(product, key)).status_code == 201
    conflict = await harness.charge(product, key, chat_id=1)
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    unknown = await harness.charge(987654321)
    assert unknown.status_code == 404
    invalid = await harness.charge(product, tracking_token="not-a-token")
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"
    anonymous = await harness.client.post("/charges", json={})
    assert anonymous.status_code == 401


async def test_sandbox_charge_is_a_valid_br_code_for_the_account_key(harness) -> None:
    product = await harness.product("sandbox", price_cents=1000)
    response = await harness.charge(product)
    assert response.status_code == 201
    fields = parse(response.json()["pix_copy_paste"])
    assert fields["54"] == "10.00" and fields["53"] == "986"
    assert "loja@example.com" in fields["26"]


async def test_admin_router_manages_products_behind_the_admin_token(harness) -> None:
    admin = {"Authorization": "Bearer test-admin-token"}
    created = await harness.client.post("/admin/gateway-accounts", headers=admin, json={
        "name": f"acct-{uuid.uuid4().hex[:6]}", "gateway": "pushinpay",
        "credentials": {"token": "pp-tok"}})
    assert created.status_code == 201, created.text
    assert "credentials" not in created.json()
    product = await harness.client.post("/admin/products", headers=admin, json={
        "name": "Ebook", "price_cents": 990, "gateway_account_id": created.json()["id"]})
    assert product.status_code == 201
    updated = await harness.client.patch(f"/admin/products/{product.json()['id']}",
                                         headers=admin, json={"price_cents": 1290})
    assert updated.json()["price_cents"] == 1290
    assert (await harness.client.get("/admin/products")).status_code == 401
    bad = await harness.client.post("/admin/gateway-accounts", headers=admin, json={
        "name": "x", "gateway": "mercadopago", "credentials": {"access_token": "t"}})
    assert bad.status_code == 400 and "secret" in bad.json()["detail"]
