"""Each adapter against its strict fake: documented shapes, units, auth, errors."""

from datetime import timedelta

import httpx
import pytest

from grim.sandbox.gateways import (
    mercadopago_app,
    mercadopago_pay,
    pushinpay_app,
    pushinpay_pay,
    woovi_app,
    woovi_pay,
)
from grim_payments.brcode import parse
from grim_payments.gateway_base import (
    Account,
    ChargeNotFound,
    ChargeRequest,
    GatewayError,
    WebhookForged,
    WebhookIgnored,
    WebhookRequest,
)
from grim_payments.gateway_mercadopago import MercadoPagoAdapter
from grim_payments.gateway_pushinpay import PushinPayAdapter
from grim_payments.gateway_woovi import WooviAdapter
from grim_payments.signatures import sign_mercadopago
from grim_schemas.base import utcnow


def client_for(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


def request(cents: int = 1990) -> ChargeRequest:
    return ChargeRequest(payment_id="pay_" + "a" * 32, amount_cents=cents,
                         description="Curso", expires_at=utcnow() + timedelta(minutes=30),
                         notification_url="http://127.0.0.1:8103/webhooks/x/1")


async def test_mercadopago_sends_reais_with_idempotency_key_and_reads_payer() -> None:
    app = mercadopago_app({"TEST-token"})
    account = Account(1, "mp", "mercadopago", {"access_token": "TEST-token"}, "whsec")
    async with client_for(app) as http:
        adapter = MercadoPagoAdapter(http, "http://fake")
        created = await adapter.create_charge(account, request(1990))
        again = await adapter.create_charge(account, request(1990))
        call = app.state.fake.creations()[0]
        assert call["body"]["transaction_amount"] == 19.9
        assert call["body"]["payment_method_id"] == "pix"
        assert call["headers"]["x-idempotency-key"] == "pay_" + "a" * 32
        assert again.gateway_charge_id == created.gateway_charge_id
        assert parse(created.pix_copy_paste)["54"] == "19.90"
        mercadopago_pay(app, created.gateway_charge_id, payer={
            "first_name": "Ana", "last_name": "Souza", "email": "ana@example.com",
            "identification": {"type": "CPF", "number": "12345678909"}})
        status = await adapter.fetch(account, created.gateway_charge_id)
        assert (status.status, status.amount_cents) == ("paid", 1990)
        assert status.paid_at is not None
        assert status.payer is not None and status.payer.name == "Ana Souza"
        assert status.payer.document == "12345678909"
        with pytest.raises(ChargeNotFound):
            await adapter.fetch(account, "999")
        bad = Account(1, "mp", "mercadopago", {"access_token": "wrong"}, "whsec")
        with pytest.raises(GatewayError) as info:
            await adapter.create_charge(bad, request())
        assert info.value.status == 401


def test_mercadopago_webhook_claims_need_a_valid_signature() -> None:
    adapter = MercadoPagoAdapter(httpx.AsyncClient(), "http://fake")
    account = Account(1, "mp", "mercadopago", {"access_token": "t"}, "whsec")
    headers = {"x-signature": sign_mercadopago("whsec", "123", "req-9", "1700000000"),
               "x-request-id": "req-9"}
    body = {"type": "payment", "action": "payment.updated", "data": {"id": "123"}}
    webhook = WebhookRequest(headers, {"data.id": "123", "type": "payment"}, b"{}", body)
    assert adapter.claimed_charge_id(account, webhook) == "123"
    forged = WebhookRequest(headers | {"x-request-id": "req-10"},
                            {"data.id": "123", "type": "payment"}, b"{}", body)
    with pytest.raises(WebhookForged):
        adapter.claimed_charge_id(account, forged)
    other = WebhookRequest(
        {"x-signature": sign_mercadopago("whsec", "55", "r", "1"), "x-request-id": "r"},
        {"data.id": "55", "type": "merchant_order"}, b"{}", {"type": "merchant_order"})
    with pytest.raises(WebhookIgnored):
        adapter.claimed_charge_id(account, other)


async def test_pushinpay_sends_cents_and_refetches_transactions() -> None:
    app = pushinpay_app({"pp-token"})
    account = Account(2, "pp", "pushinpay", {"token": "pp-token"})
    async with client_for(app) as http:
        adapter = PushinPayAdapter(http, "http://fake")
        created = await adapter.create_charge(account, request(1990))
        assert app.state.fake.creations()[0]["body"]["value"] == 1990
        assert created.qr_png_base64 and not created.qr_png_base64.startswith("data:")
        pushinpay_pay(app, created.gateway_charge_id, payer_name="JOAO", document="123")
        status = await adapter.fetch(account, created.gateway_charge_id.upper())
        assert (status.status, status.amount_cents, status.payer.name) == ("paid", 1990, "JOAO")
        with pytest.raises(GatewayError):
            await adapter.create_charge(account, request(49))
        app.state.fake.fail_next.append(503)
        with pytest.raises(GatewayError) as info:
            await adapter.fetch(account, created.gateway_charge_id)
        assert info.value.status == 503


async def test_woovi_uses_bare_app_id_and_correlation_id() -> None:
    app = woovi_app({"woovi-app-id"})
    account = Account(3, "wv", "woovi", {"app_id": "woovi-app-id"})
    async with client_for(app) as http:
        adapter = WooviAdapter(http, "http://fake")
        created = await adapter.create_charge(account, request(2500))
        call = app.state.fake.creations()[0]
        assert call["headers"]["authorization"] == "woovi-app-id"
        assert call["body"]["value"] == 2500 and call["body"]["correlationID"] == created.gateway_charge_id
        woovi_pay(app, created.gateway_charge_id, customer={"name": "Bia", "email": "b@x.com",
                                                             "taxID": {"taxID": "1", "type": "BR:CPF"}})
        status = await adapter.fetch(account, created.gateway_charge_id)
        assert (status.status, status.payer.email, status.payer.document) == ("paid", "b@x.com", "1")
    webhook = WebhookRequest({}, {}, b"{}", {"event": "OPENPIX:CHARGE_COMPLETED",
                                             "charge": {"correlationID": "pay_1"}})
    assert adapter.claimed_charge_id(account, webhook) == "pay_1"
    with pytest.raises(WebhookIgnored):
        adapter.claimed_charge_id(account, WebhookRequest({}, {}, b"{}", {"evento": "teste_webhook"}))
