"""The one wiring place: connections, clients, consumers and the outbox relay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from grim_bot_gateway.delivery_handler import DeliveryHandler
from grim_bot_gateway.directory import BotDirectory
from grim_bot_gateway.funnel_handler import FunnelHandler
from grim_bot_gateway.ingest import LazyProducer, WebhookIngest
from grim_bot_gateway.payments_client import PaymentsClient
from grim_bot_gateway.ratelimit import RateLimiter
from grim_bot_gateway.redis_dedup import SeenUpdates
from grim_bot_gateway.settings import BotGatewaySettings
from grim_bot_gateway.telegram_client import TelegramClient
from redis.asyncio import Redis

from grim.checks import postgres_check, redis_check
from grim.crypto import SecretBox
from grim.db import close_pool, create_pool
from grim.kafka import ConsumerLoop, EventPublisher, make_producer
from grim.outbox import Outbox, OutboxRelay
from grim.redis import create_redis
from grim.web import Check

log = logging.getLogger(__name__)
OWNER = "bot_gateway"


@dataclass
class Runtime:
    settings: BotGatewaySettings
    db: asyncpg.Pool
    redis: Redis
    box: SecretBox
    directory: BotDirectory
    producer: LazyProducer
    ingest: WebhookIngest
    telegram: TelegramClient
    payments: PaymentsClient
    http: list[httpx.AsyncClient]
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    loops: list[ConsumerLoop | OutboxRelay] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def checks(self) -> dict[str, Check]:
        async def kafka() -> None:
            producer = await self.producer.get()
            await producer.client.fetch_all_metadata()

        return {"kafka": kafka, "postgres": postgres_check(self.db),
                "redis": redis_check(self.redis)}

    async def publisher(self) -> EventPublisher:
        return EventPublisher(await self.producer.get(), self.settings.namespace)


def build_telegram(settings: BotGatewaySettings, http: httpx.AsyncClient) -> TelegramClient:
    return TelegramClient(
        settings.telegram_api_base, http,
        RateLimiter(settings.per_chat_interval_seconds, settings.per_bot_rate),
        max_attempts=settings.telegram_max_attempts, backoff=settings.telegram_backoff_seconds,
    )


async def start(settings: BotGatewaySettings) -> Runtime:
    db = await create_pool(settings.database_url, max_size=20)
    redis = create_redis(settings.redis_url)
    box = SecretBox(settings.secret_key.get_secret_value())
    directory = BotDirectory(db, box, ttl=settings.bot_cache_seconds)
    await directory.listen()
    # No linger: Telegram waits for the ack; batches still form while a request is in flight.
    producer = LazyProducer(lambda: make_producer(settings, "grim-bot-gateway", linger_ms=0),
                            start_timeout=settings.publish_timeout_seconds)
    ingest = WebhookIngest(
        directory, producer, SeenUpdates(redis, settings.dedup_ttl_seconds),
        namespace=settings.namespace,
        dedup_key=lambda bot, update: settings.redis_key("bot-gateway", "update", bot, update),
        publish_timeout=settings.publish_timeout_seconds,
    )
    tg_http = httpx.AsyncClient(timeout=settings.telegram_timeout_seconds,
                                limits=httpx.Limits(max_connections=100))
    pay_http = httpx.AsyncClient(timeout=settings.payments_timeout_seconds)
    rt = Runtime(
        settings=settings, db=db, redis=redis, box=box, directory=directory, producer=producer,
        ingest=ingest, telegram=build_telegram(settings, tg_http),
        payments=PaymentsClient(settings.payments_url,
                                settings.service_token.get_secret_value(), pay_http,
                                max_attempts=settings.payments_max_attempts),
        http=[tg_http, pay_http],
    )
    try:
        await producer.get()
    except (TimeoutError, KafkaError, OSError) as exc:
        # Kafka down at boot: the webhook answers 503 and the producer starts on next use.
        log.warning("kafka unavailable at start (%s)", type(exc).__name__)
    if settings.bot_gateway_run_consumers:
        _spawn(rt, "funnel", lambda: _run_updates(rt))
        _spawn(rt, "delivery", lambda: _run_delivery(rt))
        _spawn(rt, "outbox-relay", lambda: _run_relay(rt))
    return rt


def _spawn(rt: Runtime, name: str, run: Callable[[], Awaitable[None]]) -> None:
    rt.tasks.append(asyncio.create_task(_supervise(rt, name, run), name=f"bot-gateway-{name}"))


async def _supervise(rt: Runtime, name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Restart a component that died (Kafka down at boot, a bug on one record...).
    Its consumer never committed past what it finished, so a restart loses nothing."""
    failures = 0
    while not rt.stopping.is_set():
        try:
            await run()
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            log.exception("%s stopped; restarting", name)
        if not rt.stopping.is_set():
            try:
                await asyncio.wait_for(rt.stopping.wait(), min(30.0, 0.5 * 2 ** failures))
            except TimeoutError:
                pass


BatchHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]


async def _consume(rt: Runtime, stage: str, group_name: str,
                   handler_of: Callable[[EventPublisher, str], BatchHandler]) -> None:
    settings = rt.settings
    group = settings.group(group_name)
    publisher = await rt.publisher()
    consumer = AIOKafkaConsumer(
        settings.topic(stage), bootstrap_servers=settings.kafka_bootstrap, group_id=group,
        client_id=f"grim-{group_name}", enable_auto_commit=False, auto_offset_reset="earliest",
        # Fewer, fuller fetches: the webhook shares this process's CPU, and a chat
        # does not notice 100 ms.
        fetch_min_bytes=settings.consumer_fetch_min_bytes,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
    )
    await consumer.start()
    loop = ConsumerLoop(consumer, handler_of(publisher, group), group)
    rt.loops.append(loop)
    try:
        await loop.run()
    finally:
        rt.loops.remove(loop)
        await consumer.stop()


async def _run_updates(rt: Runtime) -> None:
    def handler(publisher: EventPublisher, group: str) -> BatchHandler:
        return FunnelHandler(rt.db, Outbox(OWNER, rt.settings.namespace), rt.directory,
                             rt.telegram, rt.payments, publisher, group).handle_batch

    await _consume(rt, "telegram-updates", "bot-gateway-updates", handler)


async def _run_delivery(rt: Runtime) -> None:
    def handler(publisher: EventPublisher, group: str) -> BatchHandler:
        return DeliveryHandler(rt.db, rt.directory, rt.telegram, publisher, group,
                               rt.settings.delivery_claim_seconds).handle_batch

    await _consume(rt, "paid", "bot-gateway-delivery", handler)


async def _run_relay(rt: Runtime) -> None:
    relay = OutboxRelay(rt.db, await rt.publisher(), OWNER)
    rt.loops.append(relay)
    try:
        await relay.run()
    finally:
        rt.loops.remove(relay)


async def stop(rt: Runtime) -> None:
    rt.stopping.set()
    for loop in list(rt.loops):
        loop.stop()
    if rt.tasks:
        _, pending = await asyncio.wait(rt.tasks, timeout=10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await rt.producer.stop()
    for client in rt.http:
        await client.aclose()
    await rt.directory.close()
    await rt.redis.aclose()
    await close_pool(rt.db)
