"""SQL for charges and their facts (tables payments.charges, payments.charge_facts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .gateway_base import CreatedCharge


@dataclass(frozen=True)
class Charge:
    id: str
    idempotency_key: str
    request_hash: str
    product_id: int
    product_name: str
    amount_cents: int
    currency: str
    bot_id: int
    telegram_user_id: int
    chat_id: int
    tracking_token: str | None
    account_id: int
    gateway: str
    gateway_charge_id: str | None
    pix_copy_paste: str | None
    qr_png_base64: str | None
    expires_at: datetime
    status: str
    last_error: str | None


def _charge(row: asyncpg.Record) -> Charge:
    return Charge(**{k: row[k] for k in Charge.__dataclass_fields__})


async def insert_if_new(conn: asyncpg.Connection, charge: Charge) -> tuple[Charge, bool]:
    """Insert the charge unless its idempotency key exists; returns (row, inserted)."""
    row = await conn.fetchrow(
        """
        INSERT INTO payments.charges (id, idempotency_key, request_hash, product_id, product_name,
            amount_cents, currency, bot_id, telegram_user_id, chat_id, tracking_token,
            account_id, gateway, expires_at, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'created')
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING *
        """,
        charge.id, charge.idempotency_key, charge.request_hash, charge.product_id,
        charge.product_name, charge.amount_cents, charge.currency, charge.bot_id,
        charge.telegram_user_id, charge.chat_id, charge.tracking_token, charge.account_id,
        charge.gateway, charge.expires_at,
    )
    if row is not None:
        return _charge(row), True
    existing = await by_idempotency_key(conn, charge.idempotency_key)
    assert existing is not None, "a conflicting row cannot vanish: charges are never deleted"
    return existing, False


async def by_idempotency_key(db: asyncpg.Connection | asyncpg.Pool, key: str) -> Charge | None:
    row = await db.fetchrow("SELECT * FROM payments.charges WHERE idempotency_key = $1", key)
    return _charge(row) if row else None


async def lock(conn: asyncpg.Connection, charge_id: str) -> Charge:
    """The charge, row-locked until the end of the caller's transaction."""
    row = await conn.fetchrow("SELECT * FROM payments.charges WHERE id = $1 FOR UPDATE",
                              charge_id)
    assert row is not None
    return _charge(row)


async def by_gateway_charge(
    db: asyncpg.Connection | asyncpg.Pool, account_id: int, gateway_charge_id: str
) -> Charge | None:
    row = await db.fetchrow(
        # Gateways differ in the case of their ids between create, query and webhook.
        "SELECT * FROM payments.charges WHERE account_id = $1"
        " AND lower(gateway_charge_id) = lower($2)",
        account_id, gateway_charge_id,
    )
    return _charge(row) if row else None


async def mark_issued(conn: asyncpg.Connection, charge_id: str, issued: CreatedCharge
                      ) -> Charge:
    row = await conn.fetchrow(
        """
        UPDATE payments.charges SET status = 'pending', gateway_charge_id = $2,
            pix_copy_paste = $3, qr_png_base64 = $4, expires_at = coalesce($5, expires_at),
            last_error = NULL, updated_at = now()
        WHERE id = $1 RETURNING *
        """,
        charge_id, issued.gateway_charge_id, issued.pix_copy_paste, issued.qr_png_base64,
        issued.expires_at,
    )
    return _charge(row)


async def record_error(db: asyncpg.Pool, charge_id: str, error: str) -> None:
    await db.execute(
        "UPDATE payments.charges SET last_error = $2, updated_at = now() WHERE id = $1",
        charge_id, error[:500],
    )


async def facts_of(conn: asyncpg.Connection, charge_id: str) -> frozenset[str]:
    rows = await conn.fetch("SELECT kind FROM payments.charge_facts WHERE charge_id = $1",
                            charge_id)
    return frozenset(r["kind"] for r in rows)


async def add_fact(conn: asyncpg.Connection, charge_id: str, kind: str,
                   gateway_event_id: str | None, occurred_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO payments.charge_facts (charge_id, kind, gateway_event_id, occurred_at)"
        " VALUES ($1, $2, $3, $4)",
        charge_id, kind, gateway_event_id, occurred_at,
    )


async def set_status(conn: asyncpg.Connection, charge_id: str, status: str) -> None:
    await conn.execute(
        "UPDATE payments.charges SET status = $2, updated_at = now() WHERE id = $1",
        charge_id, status,
    )


async def pending_past_expiry(db: asyncpg.Pool, grace_seconds: float, limit: int = 100
                              ) -> list[Charge]:
    rows = await db.fetch(
        "SELECT * FROM payments.charges WHERE status = 'pending'"
        " AND expires_at < now() - make_interval(secs => $1) ORDER BY expires_at LIMIT $2",
        grace_seconds, limit,
    )
    return [_charge(r) for r in rows]
