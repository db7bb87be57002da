"""Webhook ingestion: check the secret, dedup on update_id, publish, and only then say 200.

The update_id is marked seen in Redis only after Kafka acknowledged the
record, so a failed publish never hides Telegram's retry. Two concurrent
deliveries of one update may both be published; the consumer deduplicates on
(bot_id, update_id) in PostgreSQL, so the effect is still once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from grim_bot_gateway.directory import BotDirectory
from grim_bot_gateway.redis_dedup import SeenUpdates
from grim_schemas.events import TelegramUpdateReceived
from prometheus_client import Counter
from redis.exceptions import RedisError

from grim.crypto import SecretDecryptionError
from grim.coalesce import CoalescingPublisher

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "duplicate", "forbidden", "malformed", "unknown_bot",
                  "kafka_unavailable", "config_unavailable"]
WEBHOOK = Counter(
    "grim_bot_gateway_webhook_requests_total", "Telegram webhook requests by outcome", ["outcome"]
)
DEDUP_ERRORS = Counter(
    "grim_bot_gateway_dedup_errors_total", "Redis failures on the webhook dedup (consumer dedups)"
)
MAX_ID = 2**63 - 1
STATUS: dict[Outcome, int] = {
    "accepted": 200, "duplicate": 200, "forbidden": 401, "malformed": 400, "unknown_bot": 404,
    "kafka_unavailable": 503, "config_unavailable": 503,
}


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    detail: str

    @property
    def status(self) -> int:
        return STATUS[self.outcome]


class LazyProducer:
    """Starts the Kafka producer on first use and again after a failed start, so the
    webhook comes up (answering 503) while Kafka is down and recovers without a restart."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer], start_timeout: float) -> None:
        self.factory = factory
        self.start_timeout = start_timeout
        self.producer: AIOKafkaProducer | None = None
        # Updates of concurrent requests share record batches (see grim.coalesce).
        self.coalescing: CoalescingPublisher | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        if self.producer is not None:
            return self.producer
        async with self._lock:
            if self.producer is None:
                producer = self.factory()
                try:
                    await asyncio.wait_for(producer.start(), self.start_timeout)
                except (TimeoutError, KafkaError, OSError):
                    await producer.stop()
                    raise
                self.producer = producer
        return self.producer

    async def publisher(self, namespace: str) -> CoalescingPublisher:
        producer = await self.get()
        if self.coalescing is None or self.coalescing.producer is not producer:
            self.coalescing = CoalescingPublisher(producer, namespace)
        return self.coalescing

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = self.coalescing = None


def parse_update(body: bytes) -> dict[str, Any] | str:
    """The update object, or why it is not one."""
    try:
        update = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if not isinstance(update, dict):
        return "an update is a JSON object"
    update_id = update.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int) \
            or not 0 <= update_id <= MAX_ID:
        return "update_id must be a non-negative 64-bit integer"
    return update


class WebhookIngest:
    def __init__(
        self,
        directory: BotDirectory,
        producer: LazyProducer,
        seen: SeenUpdates,
        *,
        namespace: str,
        dedup_key: Callable[[int, int], str],
        publish_timeout: float,
    ) -> None:
        self.directory = directory
        self.producer = producer
        self.seen = seen
        self.namespace = namespace
        self.dedup_key = dedup_key
        self.publish_timeout = publish_timeout

    async def handle(self, bot_id: int, secret: str | None, body: bytes) -> IngestResult:
        result = await self._handle(bot_id, secret, body)
        WEBHOOK.labels(result.outcome).inc()
        return result

    async def _handle(self, bot_id: int, secret: str | None, body: bytes) -> IngestResult:
        if not 0 < bot_id <= MAX_ID:
            return IngestResult("unknown_bot", "no such bot")
        try:
            bot = await self.directory.bot(bot_id)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                SecretDecryptionError) as exc:
            log.warning("bot lookup failed (%s)", type(exc).__name__, extra={"bot_id": bot_id})
            return IngestResult("config_unavailable", "bot configuration unavailable; retry")
        if bot is None:
            return IngestResult("unknown_bot", "no such bot")
        if secret is None or not hmac.compare_digest(secret.encode(), bot.webhook_secret.encode()):
            return IngestResult("forbidden", "missing or wrong X-Telegram-Bot-Api-Secret-Token")
        update = parse_update(body)
        if isinstance(update, str):
            return IngestResult("malformed", update)
        update_id = update["update_id"]
        key = self.dedup_key(bot_id, update_id)
        if await self._seen(key):
            return IngestResult("duplicate", "update already accepted")
        event = TelegramUpdateReceived(
            producer="bot-gateway", bot_id=bot_id, update_id=update_id, update=update
        )
        try:
            # Starting the producer is bounded by its own start timeout; the publish by a
            # deadline the coalescing publisher enforces (no timer per request).
            publisher = await self.producer.publisher(self.namespace)
            await publisher.publish(event, timeout=self.publish_timeout)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("publish failed (%s); Telegram will retry", type(exc).__name__,
                        extra={"bot_id": bot_id})
            return IngestResult("kafka_unavailable", "could not store the update; retry")
        # Not awaited: Telegram needs its 200, not our Redis round trip. A mark that is
        # late or lost lets a retry through, and the consumer deduplicates it anyway.
        self.seen.mark_soon(key, on_error=lambda _: DEDUP_ERRORS.inc())
        return IngestResult("accepted", "ok")

    async def _seen(self, key: str) -> bool:
        try:
            return await self.seen.seen(key)
        except (RedisError, OSError):
            DEDUP_ERRORS.inc()
            return False
