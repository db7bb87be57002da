"""The one place where the redirect's real adapters are built, started and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import BlockingConnectionPool, Redis

from grim.crypto import SecretBox
from grim.db import close_pool, create_pool
from grim.outbox import Outbox, OutboxRelay

from .clicks import ClickService
from .kafka_link import KafkaLink
from .pool_cache import PoolCache, listen_for_changes
from .redis_counters import RedisCounters
from .settings import RedirectSettings
from .sink import DB_ERRORS, ClickSink
from .spool import Spool

log = logging.getLogger(__name__)
OWNER = "redirect"


@dataclass
class Runtime:
    settings: RedirectSettings
    db: asyncpg.Pool
    redis: Redis
    kafka: KafkaLink
    spool: Spool
    sink: ClickSink
    cache: PoolCache
    counters: RedisCounters
    clicks: ClickService
    box: SecretBox
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


async def start(settings: RedirectSettings) -> Runtime:
    """Build everything; nothing here needs Kafka or PostgreSQL to be up yet."""
    # min_size=0: connect lazily, so the process starts (and spools) with PostgreSQL down.
    db = await create_pool(settings.database_url, min_size=0, max_size=10)
    # Blocking pool: a burst of clicks waits briefly for a connection instead of failing
    # with "Too many connections" (which would skip the rotation counter).
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64,
        timeout=settings.redirect_redis_timeout, health_check_interval=30))
    kafka = KafkaLink(settings, "grim-redirect", settings.redirect_kafka_retry)
    spool = Spool(settings.redirect_spool_dir)
    spool.open()
    sink = ClickSink(
        publisher=lambda: kafka.clicks,
        db=lambda: db,
        outbox=Outbox(OWNER, settings.namespace),
        spool=spool,
        publish_timeout=settings.redirect_publish_timeout,
    )
    cache = PoolCache.from_db(db, settings.redirect_cache_ttl)
    counters = RedisCounters(redis, settings, timeout=settings.redirect_redis_timeout)
    clicks = ClickService(
        pools=cache, counters=counters, sink=sink,
        bridge_delay_ms=settings.redirect_bridge_delay_ms,
    )
    rt = Runtime(settings, db, redis, kafka, spool, sink, cache, counters, clicks,
                 SecretBox(settings.secret_key.get_secret_value()))
    await kafka.try_connect()
    rt.tasks = [
        asyncio.create_task(kafka.run(), name="redirect-kafka"),
        asyncio.create_task(_relay(rt), name="redirect-outbox-relay"),
        asyncio.create_task(_drain_spool(rt), name="redirect-spool-drain"),
        asyncio.create_task(listen_for_changes(settings.database_url, cache),
                            name="redirect-config-listener"),
    ]
    return rt


async def _relay(rt: Runtime) -> None:
    await rt.kafka.connected.wait()
    assert rt.kafka.publisher is not None
    while True:
        rt.relay = OutboxRelay(rt.db, rt.kafka.publisher, OWNER, idle_interval=0.5)
        try:
            await rt.relay.run()
            return
        except DB_ERRORS as exc:
            log.warning("outbox relay stopped (%s); restarting", exc)
            await asyncio.sleep(2.0)


async def _drain_spool(rt: Runtime, interval: float = 1.0) -> None:
    while True:
        if rt.spool.backlog:
            try:
                moved = await rt.sink.drain_spool()
            except OSError as exc:
                # The files stay where they are; the next round retries them.
                log.error("spool drain failed (%s)", exc)
                moved = 0
            if moved:
                log.info("moved %d spooled clicks", moved)
        await asyncio.sleep(interval)


async def stop(rt: Runtime) -> None:
    if rt.relay is not None:
        rt.relay.stop()
    for task in rt.tasks:
        task.cancel()
    for task in rt.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await rt.kafka.stop()
    await rt.redis.aclose()
    await rt.redis.connection_pool.disconnect()
    await close_pool(rt.db)
