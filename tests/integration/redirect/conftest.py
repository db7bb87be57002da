"""Fixtures of the redirect integration tests: settings, seeded pools, an app in-process."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from grim.config.bots import upsert_bot
from grim.config.pixels import upsert_pixel
from grim.config.pools import create_pool, get_pool, set_pool_bot
from grim.crypto import SecretBox
from grim_redirect.app import create_app
from grim_redirect.settings import RedirectSettings


@pytest.fixture
def redirect_settings(grim_settings, tmp_path) -> RedirectSettings:
    return RedirectSettings(
        **grim_settings.model_dump(),
        redirect_spool_dir=str(tmp_path / "spool"),
        redirect_trusted_proxies="127.0.0.1/32",
        redirect_kafka_retry=0.3,
        redirect_cache_ttl=30.0,  # invalidation must come from NOTIFY in these tests
    )


@asynccontextmanager
async def running(settings: RedirectSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://go.example.com") as c:
            yield app, c


class Seeder:
    def __init__(self, pg_pool, settings) -> None:
        self.db = pg_pool
        self.box = SecretBox(settings.secret_key.get_secret_value())

    async def bot(self, *, healthy: bool = True, enabled: bool = True):
        bot_id = random.randrange(10**9, 10**10)
        token = f"{bot_id}:AA{uuid.uuid4().hex}"
        bot = await upsert_bot(self.db, self.box, token=token, username=f"b{bot_id}_bot",
                               enabled=enabled)
        if not healthy:
            await self.db.execute("UPDATE config.bots SET healthy = false WHERE id = $1", bot_id)
        return bot

    async def pixel(self) -> str:
        pixel_id = str(random.randrange(10**14, 10**15))
        await upsert_pixel(self.db, self.box, pixel_id=pixel_id, access_token="EAAB" + "x" * 20)
        return pixel_id

    async def pool(self, *weights: int, pixel: bool = True, enabled: bool = True, **bot_kw):
        slug = f"p-{uuid.uuid4().hex[:12]}"
        pixel_id = await self.pixel() if pixel else None
        await create_pool(self.db, slug=slug, pixel_id=pixel_id, enabled=enabled)
        bots = []
        for weight in weights:
            bot = await self.bot(**bot_kw)
            await set_pool_bot(self.db, slug, bot.id, weight=weight)
            bots.append(bot)
        return await get_pool(self.db, slug), bots


@pytest.fixture
def seed(pg_pool, grim_settings) -> Seeder:
    return Seeder(pg_pool, grim_settings)
