"""The one place that wires the payments service: pool, producer, HTTP client,
gateway adapters, services and background loops (outbox relay, expiry)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from grim.crypto import SecretBox
from grim.db import close_pool, create_pool
from grim.kafka import EventPublisher, make_producer
from grim.outbox import Outbox, OutboxRelay

from .charges import ChargeService
from .expiry import ExpiryReconciler
from .gateway_base import GatewayAdapter
from .gateway_mercadopago import MercadoPagoAdapter
from .gateway_pushinpay import PushinPayAdapter
from .gateway_sandbox import SandboxAdapter
from .gateway_woovi import WooviAdapter
from .settings import PaymentsSettings
from .webhooks import WebhookService

log = logging.getLogger(__name__)
OWNER = "payments"


def make_adapters(settings: PaymentsSettings, http: httpx.AsyncClient
                  ) -> dict[str, GatewayAdapter]:
    return {
        "mercadopago": MercadoPagoAdapter(http, settings.mercadopago_api_base),
        "pushinpay": PushinPayAdapter(http, settings.pushinpay_api_base),
        "woovi": WooviAdapter(http, settings.woovi_api_base),
        "sandbox": SandboxAdapter(http, settings.sandbox_api_base),
    }


@dataclass
class Payments:
    settings: PaymentsSettings
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    box: SecretBox
    outbox: Outbox
    producer: AIOKafkaProducer
    relay: OutboxRelay
    charges: ChargeService
    webhooks: WebhookService
    reconciler: ExpiryReconciler
    owns_http: bool = True
    producer_started: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start_background(self) -> None:
        self.tasks.append(asyncio.create_task(self._relay_forever(), name="payments-relay"))
        self.tasks.append(asyncio.create_task(self.reconciler.run(), name="payments-expiry"))

    async def _relay_forever(self) -> None:
        # Kafka may be down when the service boots: webhooks must still be accepted
        # (they only need Postgres), so the producer connects in the background.
        delay = 0.5
        while not self.producer_started:
            try:
                await self.producer.start()
                self.producer_started = True
            except (KafkaError, OSError) as exc:
                log.warning("Kafka not reachable (%s); outbox relay retries in %.1fs", exc, delay)
                await self.producer.stop()
                self.producer = make_producer(self.settings, "payments")
                self.relay.publisher = EventPublisher(self.producer, self.settings.namespace)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
        await self.relay.run()

    async def close(self) -> None:
        self.relay.stop()
        self.reconciler.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.producer.stop()
        if self.owns_http:
            await self.http.aclose()
        await close_pool(self.pool)


async def build(settings: PaymentsSettings, *, http: httpx.AsyncClient | None = None
                ) -> Payments:
    pool = await create_pool(settings.database_url, max_size=20)
    owns_http = http is None
    if http is None:
        http = httpx.AsyncClient(timeout=settings.gateway_timeout_seconds)
    box = SecretBox(settings.secret_key.get_secret_value())
    outbox = Outbox(OWNER, settings.namespace)
    producer = make_producer(settings, "payments")
    relay = OutboxRelay(pool, EventPublisher(producer, settings.namespace), OWNER)
    adapters = make_adapters(settings, http)
    charges = ChargeService(pool, box, adapters, outbox, settings)
    webhooks = WebhookService(pool, box, adapters, outbox, settings)
    reconciler = ExpiryReconciler(pool, box, adapters, webhooks, settings)
    return Payments(settings=settings, pool=pool, http=http, box=box, outbox=outbox,
                    producer=producer, relay=relay, charges=charges, webhooks=webhooks,
                    reconciler=reconciler, owns_http=owns_http)
