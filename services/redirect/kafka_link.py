"""The click producer, kept alive in the background.

The redirect must start and answer even when Kafka is unreachable, so the
producer is (re)started by a loop instead of at import or before serving;
while it is down `publisher` is None and clicks go to the outbox.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError

from grim.coalesce import CoalescingPublisher
from grim.kafka import EventPublisher, make_producer
from grim.settings import GrimSettings

from .metrics import KAFKA_UP

log = logging.getLogger(__name__)


class KafkaLink:
    def __init__(self, settings: GrimSettings, client_id: str, retry_seconds: float = 2.0) -> None:
        self.settings = settings
        self.client_id = client_id
        self.retry_seconds = retry_seconds
        self.publisher: EventPublisher | None = None
        # Clicks of concurrent visitors share record batches (see grim.coalesce).
        self.clicks: CoalescingPublisher | None = None
        self.connected = asyncio.Event()
        self._stopping = asyncio.Event()

    async def try_connect(self) -> bool:
        producer = make_producer(
            # No linger: a visitor waits for the ack; batches still form while one is in flight.
            self.settings, self.client_id, request_timeout_ms=5000, linger_ms=0,
        )
        try:
            await producer.start()
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("kafka unreachable at %s (%s)", self.settings.kafka_bootstrap, exc)
            await producer.stop()
            return False
        self.publisher = EventPublisher(producer, self.settings.namespace)
        self.clicks = CoalescingPublisher(producer, self.settings.namespace)
        self.connected.set()
        KAFKA_UP.set(1)
        return True

    async def run(self) -> None:
        """Connect, retrying until it works or `stop()`."""
        while not self._stopping.is_set() and self.publisher is None:
            if await self.try_connect():
                return
            try:
                await asyncio.wait_for(self._stopping.wait(), self.retry_seconds)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stopping.set()
        if self.publisher is not None:
            await self.publisher.producer.stop()
            self.publisher = self.clicks = None
        KAFKA_UP.set(0)
