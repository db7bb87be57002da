"""The sandbox PIX gateway: strict merchant API, signed webhooks, retries."""

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI, Request, Response

from grim.sandbox.pix_sandbox import create_sandbox_app
from grim_payments.brcode import parse
from grim_payments.signatures import SANDBOX_HEADER, verify_sandbox
from tests.support import wait_for

KEY = {"Authorization": "Bearer merchant-key-1"}


def charge_body(**overrides: object) -> dict[str, object]:
    return {"external_id": "pay_1", "amount_cents": 1990, "description": "Curso",
            "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
            "webhook_url": "http://receiver/webhooks/sandbox/1", "pix_key": "loja@example.com",
            "merchant_name": "Loja", "merchant_city": "Sao Paulo"} | overrides


def receiver(statuses: list[int]) -> tuple[FastAPI, list[tuple[bytes, str]]]:
    app = FastAPI()
    seen: list[tuple[bytes, str]] = []

    @app.post("/webhooks/sandbox/1")
    async def hook(request: Request) -> Response:
        seen.append((await request.body(), request.headers.get(SANDBOX_HEADER, "")))
        return Response(status_code=statuses.pop(0) if statuses else 200)

    return app, seen


async def test_merchant_api_is_strict_and_scoped_to_the_key() -> None:
    target, _ = receiver([])
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=target))
    app = create_sandbox_app("s3cret-for-tests", http=hooks)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sandbox") as client:
        assert (await client.post("/v1/charges", json=charge_body())).status_code == 401
        invalid = await client.post("/v1/charges", json=charge_body(amount_cents=19.9), headers=KEY)
        assert invalid.status_code == 422
        naive = await client.post("/v1/charges", json=charge_body(expires_at="2030-01-01T00:00:00"),
                                  headers=KEY)
        assert naive.status_code == 422
        created = await client.post("/v1/charges", json=charge_body(), headers=KEY)
        assert created.status_code == 201
        charge = created.json()
        assert parse(charge["br_code"])["54"] == "19.90"
        again = await client.post("/v1/charges", json=charge_body(), headers=KEY)
        assert again.json()["id"] == charge["id"]  # external_id is the idempotency key
        other = {"Authorization": "Bearer merchant-key-2"}
        assert (await client.get(f"/v1/charges/{charge['id']}", headers=other)).status_code == 404
        assert (await client.get(f"/v1/charges/{charge['id']}", headers=KEY)).json()[
            "status"] == "pending"
    await hooks.aclose()


async def test_simulated_payment_sends_a_signed_webhook_and_retries_failures() -> None:
    target, seen = receiver([500, 503])
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=target), base_url="http://receiver")
    app = create_sandbox_app("s3cret-for-tests", http=hooks)
    app.state.sandbox.retry_delays = (0.01, 0.01, 0.01)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sandbox") as client:
        charge = (await client.post("/v1/charges", json=charge_body(), headers=KEY)).json()
        paid = await client.post("/v1/charges/pay_1/simulate-payment",
                                 json={"payer": {"name": "Ana"}})
        assert paid.json()["webhook"]["status"] == 500
        await wait_for(lambda: len(seen) == 3, timeout=5, message="two retries")
        for body, header in seen:
            verify_sandbox("s3cret-for-tests", header, body)
        assert b'"charge.paid"' in seen[-1][0] and charge["id"].encode() in seen[-1][0]
        assert (await client.post(f"/v1/charges/{charge['id']}/simulate-payment")).status_code \
            == 409
        fetched = (await client.get(f"/v1/charges/{charge['id']}", headers=KEY)).json()
        assert fetched["status"] == "paid" and fetched["payer"]["name"] == "Ana"
    await hooks.aclose()
