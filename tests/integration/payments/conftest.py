"""A payments service wired to in-process fake gateways, on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from grim.crypto import SecretBox
from grim.outbox import OutboxRelay
from grim.sandbox.gateways import mercadopago_app, pushinpay_app, woovi_app
from grim.sandbox.pix_sandbox import create_sandbox_app
from grim.settings import GrimSettings
from grim_payments import catalog
from grim_payments.app import create_app
from grim_payments.settings import PaymentsSettings
from grim_schemas import decode_any

SERVICE_TOKEN = "test-service-token"
SANDBOX_SECRET = "sandbox-secret-for-tests"
MP_SECRET = "mp-webhook-secret"
PAYMENTS_URL = "http://payments.test"


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app serving its host (fakes and payments)."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no route to {request.url.host}", request=request)
        return await transport.handle_async_request(request)


@dataclass
class Harness:
    settings: PaymentsSettings
    app: FastAPI
    client: httpx.AsyncClient
    http: httpx.AsyncClient
    fakes: dict[str, FastAPI]
    relay: OutboxRelay
    box: SecretBox

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SERVICE_TOKEN}"}

    async def product(self, gateway: str, price_cents: int = 1990, **extra: Any) -> int:
        pool = self.app.state.payments.pool
        creds = {"mercadopago": {"access_token": "TEST-mp"}, "pushinpay": {"token": "pp-tok"},
                 "woovi": {"app_id": "woovi-app"}, "sandbox": {"api_key": "sandbox-key-1"}}
        account = await catalog.add_account(
            pool, self.box, name=f"{gateway}-{uuid.uuid4().hex[:8]}", gateway=gateway,
            credentials=creds[gateway],
            webhook_secret={"mercadopago": MP_SECRET, "sandbox": SANDBOX_SECRET}.get(gateway),
            pix_key="loja@example.com" if gateway == "sandbox" else None)
        product = await catalog.add_product(pool, name=f"Curso {gateway}", price_cents=price_cents,
                                            gateway_account_id=account.id,
                                            delivery_content="https://cursos.example/acesso",
                                            **extra)
        return product.id

    async def charge(self, product_id: int, key: str | None = None, **extra: Any
                     ) -> httpx.Response:
        key = key or uuid.uuid4().hex
        body = {"idempotency_key": key, "product_id": product_id,
                "bot_id": 7000000001, "telegram_user_id": 5000000000123, "chat_id": 5000000000123,
                "tracking_token": uuid.uuid5(uuid.NAMESPACE_OID, key).hex} | extra
        return await self.client.post("/charges", json=body, headers=self.auth())

    async def row(self, payment_id: str) -> Any:
        return await self.app.state.payments.pool.fetchrow(
            "SELECT * FROM payments.charges WHERE id = $1", payment_id)


def settings_for(base: GrimSettings, **overrides: Any) -> PaymentsSettings:
    values = base.model_dump() | {
        "mercadopago_api_base": "http://mp.fake", "pushinpay_api_base": "http://pp.fake",
        "woovi_api_base": "http://woovi.fake", "sandbox_api_base": "http://sandbox.fake",
        "payments_public_url": PAYMENTS_URL, "expiry_grace_seconds": 0,
    } | overrides
    return PaymentsSettings(**values)


@pytest.fixture
async def harness(grim_settings, pg_pool, publisher) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    async with make_harness(grim_settings, pg_pool, publisher) as h:
        yield h


@asynccontextmanager
async def make_harness(grim_settings, pg_pool, publisher, **overrides: Any  # type: ignore[no-untyped-def]
                       ) -> AsyncIterator[Harness]:
    settings = settings_for(grim_settings, **overrides)
    fakes = {
        "mercadopago": mercadopago_app({"TEST-mp"}),
        "pushinpay": pushinpay_app({"pp-tok"}),
        "woovi": woovi_app({"woovi-app"}),
    }
    hosts = HostRouter({
        "mp.fake": httpx.ASGITransport(app=fakes["mercadopago"]),
        "pp.fake": httpx.ASGITransport(app=fakes["pushinpay"]),
        "woovi.fake": httpx.ASGITransport(app=fakes["woovi"]),
    })
    http = httpx.AsyncClient(transport=hosts, timeout=10)
    fakes["sandbox"] = create_sandbox_app(SANDBOX_SECRET, http=http)
    hosts.routes["sandbox.fake"] = httpx.ASGITransport(app=fakes["sandbox"])
    run_background = overrides.get("kafka_bootstrap") is not None
    app = create_app(settings, http=http, run_background=run_background)
    hosts.routes["payments.test"] = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PAYMENTS_URL)
        relay = OutboxRelay(pg_pool, publisher, "payments")
        yield Harness(settings, app, client, http, fakes, relay,
                      SecretBox(settings.secret_key.get_secret_value()))
        await client.aclose()
    await http.aclose()


async def events_in(settings: GrimSettings, stage: str, payment_id: str) -> list[Any]:
    """Every event of `stage` about `payment_id`, reading the topic to its current end."""
    topic = settings.topic(stage)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        # An assign()-only consumer has no metadata yet; aiokafka offers no public refresh.
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        assert parts, f"topic {topic} does not exist"
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = decode_any(record.value)
                    if getattr(event, "payment_id", None) == payment_id:
                        found.append(event)
        return found
    finally:
        await consumer.stop()
