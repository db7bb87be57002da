"""The one wiring place: settings -> connections, adapters, the loop and the ops HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from grim.checks import kafka_check, postgres_check
from grim.crypto import SecretBox
from grim.db import close_pool, create_pool
from grim.kafka import EventPublisher, make_producer

from .app import create_app
from .dispatcher import Dispatcher
from .graph_client import GraphClient
from .ledger import Ledger
from .loop import DispatchLoop
from .metrics import DLQ_SIZE, OLDEST_UNSENT
from .pixel_cache import PixelCache
from .settings import DispatcherSettings

log = logging.getLogger(__name__)


@dataclass
class Worker:
    settings: DispatcherSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer
    http: httpx.AsyncClient
    pixels: PixelCache
    ledger: Ledger
    dispatcher: Dispatcher
    loop: DispatchLoop

    def oldest_unsent_age(self) -> float:
        starts = list(self.loop.waiting_since.values())
        if self.dispatcher.in_flight_since is not None:
            starts.append(self.dispatcher.in_flight_since)
        return max(0.0, time.time() - min(starts)) if starts else 0.0


@contextlib.asynccontextmanager
async def build(settings: DispatcherSettings) -> AsyncIterator[Worker]:
    pool = await create_pool(settings.database_url, max_size=8)
    producer = make_producer(settings, "grim-dispatcher", linger_ms=5)
    group = settings.group(settings.dispatcher_group_name)
    consumer = AIOKafkaConsumer(
        settings.topic("conversions"),
        settings.topic("capi-retry"),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        client_id="grim-dispatcher",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        session_timeout_ms=settings.dispatcher_session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.dispatcher_session_timeout_ms // 3),
    )
    timeout = settings.dispatcher_graph_timeout_seconds
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=settings.dispatcher_concurrency * 2),
    )
    try:
        await producer.start()
        try:
            await consumer.start()
            try:
                pixels = PixelCache(pool, SecretBox(settings.secret_key.get_secret_value()),
                                    ttl=settings.dispatcher_pixel_cache_seconds)
                await pixels.listen()
                ledger = Ledger(pool)
                dispatcher = Dispatcher(
                    settings, ledger=ledger, pixels=pixels,
                    graph=GraphClient(http, settings.meta_graph_base, settings.meta_api_version),
                    publisher=EventPublisher(producer, settings.namespace),
                )
                loop = DispatchLoop(
                    consumer, dispatcher.take_in, dispatcher.deliver, dispatcher.requeue,
                    discard=dispatcher.discard, group=group,
                    retry_topic=settings.topic("capi-retry"),
                    fetch_max=settings.dispatcher_fetch_max,
                    linger_ms=settings.dispatcher_linger_ms,
                )
                worker = Worker(settings, pool, producer, consumer, http, pixels, ledger,
                                dispatcher, loop)
                OLDEST_UNSENT.set_function(worker.oldest_unsent_age)
                try:
                    yield worker
                finally:
                    await pixels.close()
            finally:
                await consumer.stop()
        finally:
            await producer.stop()
    finally:
        await http.aclose()
        await close_pool(pool)


async def _refresh_dlq_size(ledger: Ledger, every: float = 15.0) -> None:
    while True:
        try:
            DLQ_SIZE.set(await ledger.pending_dead_letters())
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("cannot count dead letters: %s", exc)
        await asyncio.sleep(every)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a worker that holds thousands of events.

    A handled batch keeps ~20 objects per event alive for a few hundred ms, long
    enough with the default thresholds (700, 10, 10) to be promoted to the oldest
    generation and to trigger full collections that also walk every module object:
    they took ~30% of the CPU under load. Objects alive at startup are frozen out
    of collections, and young collections run every 50,000 allocations instead of
    700 so a batch's objects mostly die before promotion. Reference counting
    still frees everything acyclic at once; only cycles wait a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def run(settings: DispatcherSettings, *, serve_http: bool = True,
              stop: asyncio.Event | None = None, handle_signals: bool = True) -> None:
    """Run the worker until `stop` is set (or SIGTERM/SIGINT arrives, when handling signals)."""
    tune_gc()
    stop = stop or asyncio.Event()
    if handle_signals:
        running = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                running.add_signal_handler(sig, stop.set)
    async with build(settings) as worker:
        tasks = [asyncio.create_task(worker.loop.run(), name="dispatch-loop"),
                 asyncio.create_task(_refresh_dlq_size(worker.ledger), name="dlq-size")]
        server = None
        if serve_http:
            app = create_app({"kafka": kafka_check(worker.producer),
                              "postgres": postgres_check(worker.pool)})
            server = uvicorn.Server(uvicorn.Config(
                app, host=settings.dispatcher_host, port=settings.dispatcher_port,
                log_level="warning", lifespan="off",
            ))
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            tasks.append(asyncio.create_task(server.serve(), name="ops-http"))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        worker.loop.stop()
        if server is not None:
            server.should_exit = True
        if tasks[0] in done and tasks[0].exception() is not None:
            stopper.cancel()
            for task in tasks[1:]:
                task.cancel()
            raise tasks[0].exception()  # type: ignore[misc]
        await asyncio.wait_for(tasks[0], timeout=60)
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
