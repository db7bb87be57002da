"""Fixtures of the bot gateway's integration tests: the real stack, a strict fake
Telegram, a fake payments `POST /charges` that checks the contract, and a gateway."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from grim_bot_gateway.app import create_app
from grim_bot_gateway.settings import BotGatewaySettings
from pydantic import BaseModel, ConfigDict, Field

from grim.config.bots import upsert_bot
from grim.crypto import SecretBox
from grim.sandbox.telegram import FakeTelegram
from grim.settings import GrimSettings
from tests.support import wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` with uvicorn in this process on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started, timeout=10, message="uvicorn start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class ChargeBody(BaseModel):
    """Exactly the contract of payments' POST /charges."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=200)
    product_id: int = Field(gt=0)
    bot_id: int = Field(gt=0)
    telegram_user_id: int = Field(gt=0)
    chat_id: int
    tracking_token: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class FakePayments:
    def __init__(self, service_token: str) -> None:
        self.products = {7: ("Curso de Bolo", 4990), 8: ("Mentoria", 99700)}
        self.requests: list[dict[str, Any]] = []
        self.by_key: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.fail_next = 0
        self.app = FastAPI()

        @self.app.post("/charges")
        async def charges(body: ChargeBody,
                          authorization: str | None = Header(default=None)) -> JSONResponse:
            if authorization != f"Bearer {service_token}":
                raise HTTPException(401, "bad service token")
            request = body.model_dump()
            self.requests.append(request)
            if self.fail_next:
                self.fail_next -= 1
                return JSONResponse({"error": "gateway_failure", "detail": "x"}, 502)
            if body.product_id not in self.products:
                return JSONResponse({"error": "not_found", "detail": "no product"}, 404)
            known = self.by_key.get(body.idempotency_key)
            if known is not None:
                if known[0] != request:
                    return JSONResponse({"error": "conflict", "detail": "key reused"}, 409)
                return JSONResponse(known[1], 200)
            name, price = self.products[body.product_id]
            charge = {
                "payment_id": f"pay_{uuid.uuid4().hex[:12]}", "status": "pending",
                "amount_cents": price, "currency": "BRL", "product_name": name,
                "pix_copy_paste": "00020101021226830014br.gov.bcb.pix" + "5" * 100 + "6304ABCD",
                "qr_png_base64": base64.b64encode(PNG).decode(),
                "expires_at": "2030-01-01T00:00:00.000Z",
            }
            self.by_key[body.idempotency_key] = (request, charge)
            return JSONResponse(charge, 201)


@pytest.fixture(scope="module")
async def fake_tg() -> AsyncIterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram()
    async with serve(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
async def fake_payments(grim_settings: GrimSettings) -> AsyncIterator[tuple[FakePayments, str]]:
    fake = FakePayments(grim_settings.service_token.get_secret_value())
    async with serve(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
def gw_settings(grim_settings: GrimSettings, fake_tg, fake_payments) -> BotGatewaySettings:
    return BotGatewaySettings(
        **grim_settings.model_dump(exclude={"telegram_api_base"}),
        telegram_api_base=fake_tg[1], payments_url=fake_payments[1],
        per_chat_interval_seconds=0.0, per_bot_rate=0, telegram_max_attempts=2,
        telegram_backoff_seconds=0.01, payments_max_attempts=2, publish_timeout_seconds=5,
        bot_gateway_public_url="https://grim.example", delivery_claim_seconds=2,
        dedup_ttl_seconds=600,  # the session's Redis keys expire on their own
    )


@pytest.fixture(scope="module")
async def gateway(gw_settings: BotGatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(gw_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class GwBot:
    def __init__(self, bot_id: int, secret: str) -> None:
        self.id = bot_id
        self.secret = secret
        self._update_ids = iter(range(10_000_000, 2**40))

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def post(self, client: httpx.AsyncClient, update: dict[str, Any],
                   secret: str | None = "same") -> httpx.Response:
        headers = {}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret if secret == "same" \
                else secret
        return await client.post(f"/webhook/telegram/{self.id}", json=update, headers=headers)


@pytest.fixture
async def make_bot(grim_settings: GrimSettings, pg_pool) -> Callable[[], Any]:
    box = SecretBox(grim_settings.secret_key.get_secret_value())

    async def make() -> GwBot:
        bot_id = secrets.randbelow(9 * 10**9) + 10**9
        token = f"{bot_id}:AA{secrets.token_urlsafe(30)[:33]}"
        secret = secrets.token_urlsafe(24)
        await upsert_bot(pg_pool, box, token=token, username=f"t{uuid.uuid4().hex[:10]}_bot",
                         webhook_secret=secret)
        return GwBot(bot_id, secret)

    return make


async def read_until(
    bootstrap: str, topic: str, done: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord]:
    """Read `topic` from the beginning until `done(records)` holds; fail at the deadline."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic} ({len(records)} records)")
            for part in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()
