"""Consumer of `paid`: sends the delivery message once per payment.

Ledger in bot_gateway.deliveries, keyed by payment_id: claimed (with a lease)
before sending, marked sent after Telegram's ok. A redelivered event finds it
sent and does nothing. Crash window: if the process dies after Telegram's ok
but before the mark, the claim expires and the message is sent again. We
chose a rare duplicate over a buyer who paid and never got the link (Telegram
has no idempotency key to close that window).
"""

from __future__ import annotations

import logging

import asyncpg
from aiokafka import ConsumerRecord
from grim_bot_gateway import store
from grim_bot_gateway.directory import BotDirectory
from grim_bot_gateway.funnel import render_delivery
from grim_bot_gateway.lanes import run_lanes
from grim_bot_gateway.metrics import BLOCKED_USERS, DELIVERIES
from grim_bot_gateway.telegram_client import (
    BotBlocked,
    TelegramClient,
    TelegramError,
    TelegramUnavailable,
)
from grim_schemas import decode
from grim_schemas.events import PaymentConfirmed

from grim.kafka import EventPublisher, decode_batch

log = logging.getLogger(__name__)


class DeliveryBusy(ConnectionError):
    """Another worker holds a fresh claim on this payment; retry the batch later."""


class DeliveryHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: BotDirectory,
        telegram: TelegramClient,
        publisher: EventPublisher,
        group: str,
        claim_seconds: float,
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.telegram = telegram
        self.publisher = publisher
        self.group = group
        self.claim_seconds = claim_seconds

    async def handle_batch(self, records: list[ConsumerRecord]) -> None:
        decoded = await decode_batch(
            records, lambda raw: decode(raw, PaymentConfirmed), self.publisher, self.group
        )
        await run_lanes([e for _, e in decoded],
                        lambda e: (e.bot_id, e.telegram_user_id), self.deliver)

    async def deliver(self, event: PaymentConfirmed) -> None:
        claim = await store.claim_delivery(self.pool, event, self.claim_seconds)
        if claim == "done":
            DELIVERIES.labels("duplicate").inc()
            return
        if claim == "busy":
            raise DeliveryBusy(f"delivery of {event.payment_id} is being sent elsewhere")
        bot = await self.directory.bot(event.bot_id)
        if bot is None:
            await store.mark_delivery_failed(self.pool, event.payment_id, "unknown bot")
            DELIVERIES.labels("failed").inc()
            return
        user = await store.get_user(self.pool, event.bot_id, event.telegram_user_id)
        # A private chat's id is the user's id; the stored one wins when we have it.
        chat_id = user.chat_id if user else event.telegram_user_id
        funnel = await self.directory.funnel(event.bot_id)
        try:
            for message in render_delivery(funnel, chat_id, event.delivery_url):
                await self.telegram.send(bot.id, bot.token, message)
        except BotBlocked as exc:
            BLOCKED_USERS.inc()
            DELIVERIES.labels("blocked").inc()
            await store.set_blocked(self.pool, bot.id, event.telegram_user_id, chat_id, True)
            await store.mark_delivery_failed(self.pool, event.payment_id, exc.reason)
            return
        except TelegramError as exc:
            DELIVERIES.labels("failed").inc()
            log.error("delivery refused by Telegram: %s", exc.reason,
                      extra={"payment_id": event.payment_id, "bot_id": bot.id})
            await store.mark_delivery_failed(self.pool, event.payment_id, exc.reason)
            return
        except TelegramUnavailable:
            await store.release_delivery(self.pool, event.payment_id)
            raise
        await store.mark_delivered(self.pool, event.payment_id)
        DELIVERIES.labels("sent").inc()
        log.info("delivery sent", extra={"payment_id": event.payment_id, "bot_id": bot.id})
