"""Consumer of telegram-updates: binds /start tokens and runs the funnel.

Per record: claim the update in PostgreSQL (dedup by bot_id + update_id), make
the durable effects (binding + BotStarted in the outbox, one transaction), then
reply through Telegram and mark the update replied. A crash between the two
replays the replies but never the binding.
"""

from __future__ import annotations

import logging

import asyncpg
from aiokafka import ConsumerRecord
from grim_bot_gateway import store
from grim_bot_gateway.directory import BotDirectory, BotEntry
from grim_bot_gateway.funnel import (
    Outgoing,
    idempotency_key,
    render_notice,
    render_pix,
    render_welcome,
)
from grim_bot_gateway.lanes import run_lanes
from grim_bot_gateway.metrics import BLOCKED_USERS, STARTS, UPDATES
from grim_bot_gateway.payments_client import (
    ChargeRefused,
    ChargeRequest,
    PaymentsClient,
    PaymentsUnavailable,
)
from grim_bot_gateway.telegram_client import BotBlocked, TelegramClient, TelegramError
from grim_bot_gateway.updates import Incoming, classify, pix_product, update_type
from grim_schemas import decode
from grim_schemas.events import BotStarted, TelegramUpdateReceived
from pydantic import ValidationError

from grim.kafka import EventPublisher, dead_letter, decode_batch
from grim.outbox import Outbox

log = logging.getLogger(__name__)


class FunnelHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        directory: BotDirectory,
        telegram: TelegramClient,
        payments: PaymentsClient,
        publisher: EventPublisher,
        group: str,
    ) -> None:
        self.pool = pool
        self.outbox = outbox
        self.directory = directory
        self.telegram = telegram
        self.payments = payments
        self.publisher = publisher
        self.group = group

    async def handle_batch(self, records: list[ConsumerRecord]) -> None:
        decoded = await decode_batch(
            records, lambda raw: decode(raw, TelegramUpdateReceived), self.publisher, self.group
        )
        await run_lanes(decoded, self._lane_of, self._guarded)

    @staticmethod
    def _lane_of(item: tuple[ConsumerRecord, TelegramUpdateReceived]) -> tuple[int, int | None]:
        incoming = classify(item[1].update)
        return (item[1].bot_id, incoming.chat_id if incoming.chat_id is not None
                else incoming.user_id)

    async def _guarded(self, item: tuple[ConsumerRecord, TelegramUpdateReceived]) -> None:
        """Park an update that fails the same way every time, instead of blocking its
        partition forever; transient failures (ConnectionError...) still propagate."""
        record, event = item
        try:
            await self.handle(event)
        except (ValidationError, asyncpg.DataError) as exc:
            UPDATES.labels(update_type(event.update), "failed").inc()
            await dead_letter(self.publisher, record, self.group,
                              f"{type(exc).__name__}: {str(exc)[:300]}")

    async def handle(self, event: TelegramUpdateReceived) -> None:
        incoming = classify(event.update)
        if incoming.kind in ("ignored", "message"):
            UPDATES.labels(incoming.update_type, "ignored").inc()
            return
        bot = await self.directory.bot(event.bot_id)
        if bot is None:
            log.warning("update for an unknown bot", extra={"bot_id": event.bot_id})
            UPDATES.labels(incoming.update_type, "ignored").inc()
            return
        if incoming.kind == "start":
            done = await self._start(bot, event, incoming)
        elif incoming.kind == "callback":
            done = await self._callback(bot, event, incoming)
        else:
            assert incoming.user_id is not None
            await store.set_blocked(self.pool, bot.id, incoming.user_id,
                                    incoming.chat_id or incoming.user_id,
                                    incoming.kind == "blocked")
            if incoming.kind == "blocked":
                BLOCKED_USERS.inc()
            done = True
        UPDATES.labels(incoming.update_type, "handled" if done else "duplicate").inc()

    async def _start(
        self, bot: BotEntry, event: TelegramUpdateReceived, incoming: Incoming
    ) -> bool:
        assert incoming.start is not None and incoming.user_id is not None
        assert incoming.chat_id is not None
        started = BotStarted(
            event_id=f"start_{bot.id}_{event.update_id}",
            producer="bot-gateway", bot_id=bot.id, telegram_user_id=incoming.user_id,
            chat_id=incoming.chat_id, update_id=event.update_id,
            payload=incoming.start.payload, tracking_token=incoming.start.tracking_token,
            username=incoming.username, first_name=incoming.first_name,
            language_code=incoming.language_code,
        )
        state = await store.record_start(self.pool, self.outbox, started)
        if state == "done":
            return False
        if state == "new":
            STARTS.labels("yes" if started.tracking_token else "no").inc()
        funnel = await self.directory.funnel(bot.id)
        await self._send_all(bot, incoming.user_id, incoming.chat_id,
                             render_welcome(funnel, incoming.chat_id, incoming.first_name))
        await store.mark_replied(self.pool, bot.id, event.update_id)
        return True

    async def _callback(
        self, bot: BotEntry, event: TelegramUpdateReceived, incoming: Incoming
    ) -> bool:
        assert incoming.user_id is not None and incoming.chat_id is not None
        state = await store.begin_update(self.pool, bot.id, event.update_id, "callback")
        if state == "done":
            return False
        product_id = pix_product(incoming.callback_data)
        funnel = await self.directory.funnel(bot.id)
        offer = funnel.offer(product_id) if product_id is not None else None
        await self._answer(bot, incoming.callback_id,
                           "Gerando seu PIX..." if offer else None)
        if product_id is not None and offer is None:
            await self._send_all(bot, incoming.user_id, incoming.chat_id,
                                 [render_notice(funnel, incoming.chat_id,
                                                funnel.unavailable_text)])
        elif offer is not None:
            await self._charge(bot, event, incoming, offer.product_id)
        await store.mark_replied(self.pool, bot.id, event.update_id)
        return True

    async def _charge(
        self, bot: BotEntry, event: TelegramUpdateReceived, incoming: Incoming, product_id: int
    ) -> None:
        assert incoming.user_id is not None and incoming.chat_id is not None
        funnel = await self.directory.funnel(bot.id)
        user = await store.get_user(self.pool, bot.id, incoming.user_id)
        # The offer message is the attempt: tapping its button again asks for the same charge.
        attempt = incoming.callback_message_id or f"u{event.update_id}"
        request = ChargeRequest(
            idempotency_key=idempotency_key(bot.id, incoming.user_id, product_id, attempt),
            product_id=product_id, bot_id=bot.id, telegram_user_id=incoming.user_id,
            chat_id=incoming.chat_id, tracking_token=user.tracking_token if user else None,
        )
        try:
            charge = await self.payments.create_charge(request)
        except ChargeRefused as exc:
            log.warning("charge refused: %s", exc, extra={"bot_id": bot.id})
            text = funnel.unavailable_text if exc.status == 404 else funnel.pix_error_text
            messages = [render_notice(funnel, incoming.chat_id, text)]
        except PaymentsUnavailable as exc:
            log.warning("payments unavailable: %s", exc, extra={"bot_id": bot.id})
            messages = [render_notice(funnel, incoming.chat_id, funnel.pix_error_text)]
        else:
            messages = render_pix(funnel, incoming.chat_id, charge)
        await self._send_all(bot, incoming.user_id, incoming.chat_id, messages)

    async def _answer(self, bot: BotEntry, callback_id: str | None, text: str | None) -> None:
        params: dict[str, object] = {"callback_query_id": callback_id}
        if text:
            params["text"] = text
        try:
            await self.telegram.call(bot.id, bot.token, "answerCallbackQuery", params)
        except TelegramError as exc:
            # "query is too old" after a long outage: the chat replies still go out.
            log.info("answerCallbackQuery refused: %s", exc.reason, extra={"bot_id": bot.id})

    async def _send_all(
        self, bot: BotEntry, user_id: int, chat_id: int, messages: list[Outgoing]
    ) -> None:
        for message in messages:
            try:
                await self.telegram.send(bot.id, bot.token, message)
            except BotBlocked:
                BLOCKED_USERS.inc()
                await store.set_blocked(self.pool, bot.id, user_id, chat_id, True)
                return
            except TelegramError as exc:
                log.warning("message refused by Telegram: %s", exc.reason,
                            extra={"bot_id": bot.id})
