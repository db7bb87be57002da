"""The whole system in one call, for tests and benchmarks: every service as a subprocess
(the supervisor) on given settings, with free ports and its own run dir, seeded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from grim.demo.seed import DemoSeller, register_webhooks, seed_demo
from grim.demo.settings import DemoSettings
from grim.demo.simulate import Endpoints, GroundTruth, Simulator
from grim.demo.supervisor import Supervisor
from grim.settings import GrimSettings

PORTS = ("admin", "redirect", "bot_gateway", "payments", "projector", "dispatcher", "telegram",
         "graph", "sandbox")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class System:
    settings: DemoSettings
    supervisor: Supervisor
    seller: DemoSeller
    db: asyncpg.Pool

    @property
    def endpoints(self) -> Endpoints:
        s = self.settings
        return Endpoints(s.redirect_url, s.bot_gateway_url, s.telegram_url, s.sandbox_url)

    async def simulate(self, count: int, *, seed: int, rate: float = 15.0,
                       wait_timeout: float = 60.0, only: str | None = None) -> GroundTruth:
        async with httpx.AsyncClient(timeout=20) as http:
            sim = Simulator(self.endpoints, self.seller, http=http, wait_timeout=wait_timeout)
            return await sim.run(count, seed=seed, rate=rate, only=only)  # type: ignore[arg-type]


def demo_settings(base: GrimSettings, run_dir: Path, **overrides: object) -> DemoSettings:
    """`base`'s stack and namespace, free ports, sandbox everything (never real Meta)."""
    values: dict[str, object] = {
        "kafka_bootstrap": base.kafka_bootstrap, "database_url": base.database_url,
        "redis_url": base.redis_url, "namespace": base.namespace,
        "secret_key": base.secret_key, "admin_token": base.admin_token,
        "service_token": base.service_token, "demo_run_dir": str(run_dir),
        "demo_pixel_id": None, "demo_meta_access_token": None, "log_level": "WARNING",
    }
    values.update({f"demo_{name}_port": free_port() for name in PORTS})
    values.update(overrides)
    return DemoSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_system(base: GrimSettings, run_dir: Path, **overrides: object
                         ) -> AsyncIterator[System]:
    from grim.db import create_pool

    settings = demo_settings(base, run_dir, **overrides)
    db = await create_pool(settings.database_url, max_size=4)
    sup = Supervisor.from_settings(settings, echo=print)
    try:
        seller = await seed_demo(settings, db)
        await asyncio.to_thread(sup.start_all)
        await asyncio.to_thread(sup.wait_ready, None, 180.0)
        sup.watch()
        await register_webhooks(settings, seller.bots)
        yield System(settings, sup, seller, db)
    finally:
        await asyncio.to_thread(sup.stop_all)
        await asyncio.wait_for(db.close(), 10)


@contextlib.asynccontextmanager
async def private_stack_space(base: GrimSettings, label: str) -> AsyncIterator[GrimSettings]:
    """A scratch database (migrated) and topic namespace on `base`'s servers, removed after."""
    from aiokafka.admin import AIOKafkaAdminClient

    from grim.migrate import migrate
    from grim.topics_admin import create_topics

    run_id = uuid.uuid4().hex[:8]
    database = f"grim_{label}_{run_id}"
    conn = await asyncpg.connect(base.database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = base.database_url.rsplit("/", 1)[0] + f"/{database}"
    settings = base.model_copy(update={"database_url": dsn, "namespace": f"{label}{run_id}."})
    try:
        await migrate(dsn)
        await create_topics(settings.kafka_bootstrap, settings.namespace)
        yield settings
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
        conn = await asyncpg.connect(base.database_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()
