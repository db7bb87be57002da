"""Create a PIX charge, idempotently.

Same idempotency key -> same charge, never two: the first request inserts the
row ('created'); whoever holds its row lock calls the gateway (with the charge
id as the gateway's own idempotency key where it has one) and commits the
gateway's answer, the `pending` fact and PixGenerated together. A gateway
failure leaves the row 'created', so a retry with the same key resumes it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field

from grim.crypto import SecretBox
from grim.outbox import Outbox
from grim_schemas import PixGenerated
from grim_schemas.base import TOKEN_PATTERN, utcnow

from . import catalog, repository
from .gateway_base import ChargeRequest, CreatedCharge, GatewayAdapter, GatewayError
from .metrics import CHARGES, TRANSITIONS
from .settings import PaymentsSettings


class CreateCharge(BaseModel):
    """Body of POST /charges (from the bot gateway)."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=128)
    product_id: int
    bot_id: int
    telegram_user_id: int
    chat_id: int
    tracking_token: str | None = Field(default=None, pattern=TOKEN_PATTERN)

    def fingerprint(self) -> str:
        return hashlib.sha256(orjson.dumps(self.model_dump(), option=orjson.OPT_SORT_KEYS)
                              ).hexdigest()


class ProductNotFound(LookupError):
    pass


class IdempotencyConflict(ValueError):
    pass


class ChargeFailed(RuntimeError):
    """The gateway did not issue the charge; a retry with the same key may succeed."""


@dataclass(frozen=True)
class ChargeResult:
    charge: repository.Charge
    created: bool


class ChargeService:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, adapters: dict[str, GatewayAdapter],
                 outbox: Outbox, settings: PaymentsSettings) -> None:
        self.pool = pool
        self.box = box
        self.adapters = adapters
        self.outbox = outbox
        self.settings = settings

    async def create(self, command: CreateCharge) -> ChargeResult:
        fingerprint = command.fingerprint()
        existing = await repository.by_idempotency_key(self.pool, command.idempotency_key)
        if existing is None:
            product = await catalog.get_product(self.pool, command.product_id)
            if product is None:
                CHARGES.labels("none", "unknown_product").inc()
                raise ProductNotFound(f"no product {command.product_id}")
            account = await self.pool.fetchrow(
                "SELECT gateway FROM payments.gateway_accounts WHERE id = $1",
                product.gateway_account_id)
            draft = repository.Charge(
                id=f"pay_{uuid.uuid4().hex}", idempotency_key=command.idempotency_key,
                request_hash=fingerprint, product_id=product.id, product_name=product.name,
                amount_cents=product.price_cents, currency=product.currency,
                bot_id=command.bot_id, telegram_user_id=command.telegram_user_id,
                chat_id=command.chat_id, tracking_token=command.tracking_token,
                account_id=product.gateway_account_id, gateway=account["gateway"],
                gateway_charge_id=None, pix_copy_paste=None, qr_png_base64=None,
                expires_at=utcnow() + timedelta(seconds=product.expires_in_seconds),
                status="created", last_error=None,
            )
            async with self.pool.acquire() as conn:
                existing, _ = await repository.insert_if_new(conn, draft)
        if existing.request_hash != fingerprint:
            CHARGES.labels(existing.gateway, "conflict").inc()
            raise IdempotencyConflict(
                "this idempotency_key was used with a different request body")
        if existing.status != "created":
            CHARGES.labels(existing.gateway, "replayed").inc()
            return ChargeResult(existing, created=False)
        return await self._issue(existing.id)

    async def _issue(self, charge_id: str) -> ChargeResult:
        # The row lock is held across the gateway call on purpose: concurrent
        # retries of one key wait here instead of creating a second charge.
        error: str | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            charge = await repository.lock(conn, charge_id)
            if charge.status != "created":
                CHARGES.labels(charge.gateway, "replayed").inc()
                return ChargeResult(charge, created=False)
            try:
                issued = await self._call_gateway(conn, charge)
            except GatewayError as exc:
                error = str(exc)
            else:
                charge = await repository.mark_issued(conn, charge.id, issued)
                await repository.add_fact(conn, charge.id, "pending", None, utcnow())
                TRANSITIONS.labels("pending", "pending").inc()
                await self.outbox.add(conn, PixGenerated(
                    event_id=f"pix_{charge.id}", producer="payments",
                    bot_id=charge.bot_id, telegram_user_id=charge.telegram_user_id,
                    payment_id=charge.id, product_id=charge.product_id,
                    product_name=charge.product_name, amount_cents=charge.amount_cents,
                    gateway=charge.gateway, gateway_charge_id=issued.gateway_charge_id,
                    expires_at=charge.expires_at, tracking_token=charge.tracking_token,
                ))
        if error is not None:
            await repository.record_error(self.pool, charge_id, error)
            CHARGES.labels(charge.gateway, "gateway_error").inc()
            raise ChargeFailed(error)
        CHARGES.labels(charge.gateway, "created").inc()
        return ChargeResult(charge, created=True)

    async def _call_gateway(self, conn: asyncpg.Connection, charge: repository.Charge
                            ) -> CreatedCharge:
        account = await catalog.load_account(conn, self.box, charge.account_id)
        if account is None:
            raise GatewayError(f"gateway account {charge.account_id} is missing or disabled")
        adapter = self.adapters.get(account.gateway)
        if adapter is None:
            raise GatewayError(f"no adapter for gateway {account.gateway!r}")
        return await adapter.create_charge(account, ChargeRequest(
            payment_id=charge.id, amount_cents=charge.amount_cents,
            description=charge.product_name, expires_at=charge.expires_at,
            notification_url=self.settings.webhook_url(account.gateway, account.id),
        ))
