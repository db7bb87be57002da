"""Delivery tokens: minted when a charge is paid, stored hashed, opened by the buyer.

The Purchase never depends on this page: it is derived from the `paid` fact.
Opening only announces DeliveryOpened, once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import asyncpg

from grim.outbox import Outbox
from grim_schemas import DeliveryOpened
from grim_schemas.base import utcnow

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")


def new_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def mint(conn: asyncpg.Connection, charge_id: str) -> str:
    token = new_token()
    await conn.execute(
        "INSERT INTO payments.delivery_tokens (token_hash, charge_id) VALUES ($1, $2)",
        token_hash(token), charge_id,
    )
    return token


async def revoke(conn: asyncpg.Connection, charge_id: str) -> None:
    await conn.execute(
        "UPDATE payments.delivery_tokens SET revoked_at = now()"
        " WHERE charge_id = $1 AND revoked_at IS NULL",
        charge_id,
    )


@dataclass(frozen=True)
class Delivery:
    payment_id: str
    product_name: str
    content: str
    first_open: bool


async def open_delivery(pool: asyncpg.Pool, outbox: Outbox, token: str) -> Delivery | None:
    """The delivery behind `token`, or None for unknown, malformed or revoked tokens."""
    if not _TOKEN.match(token):
        return None
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            SELECT t.charge_id, t.revoked_at, t.first_opened_at, c.bot_id, c.telegram_user_id,
                   p.name AS product_name, p.delivery_content
            FROM payments.delivery_tokens t
            JOIN payments.charges c ON c.id = t.charge_id
            JOIN payments.products p ON p.id = c.product_id
            WHERE t.token_hash = $1
            FOR UPDATE OF t
            """,
            token_hash(token),
        )
        if row is None or row["revoked_at"] is not None:
            return None
        first = row["first_opened_at"] is None
        now = utcnow()
        await conn.execute(
            "UPDATE payments.delivery_tokens SET open_count = open_count + 1,"
            " first_opened_at = coalesce(first_opened_at, $2) WHERE token_hash = $1",
            token_hash(token), now,
        )
        if first:
            await outbox.add(conn, DeliveryOpened(
                event_id=f"delivered_{row['charge_id']}", producer="payments",
                bot_id=row["bot_id"], telegram_user_id=row["telegram_user_id"],
                payment_id=row["charge_id"], opened_at=now,
            ))
    return Delivery(payment_id=row["charge_id"], product_name=row["product_name"],
                    content=row["delivery_content"], first_open=first)
