"""PostgreSQL state of the bot gateway (schema bot_gateway), through asyncpg."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg
from grim_bot_gateway.funnel import FunnelConfig
from grim_schemas.events import BotStarted, PaymentConfirmed

from grim.outbox import Outbox

UpdateState = Literal["new", "pending", "done"]
ClaimState = Literal["claimed", "done", "busy"]


@dataclass(frozen=True)
class BotUser:
    bot_id: int
    telegram_user_id: int
    chat_id: int
    tracking_token: str | None
    blocked: bool


async def _begin(conn: asyncpg.Connection, bot_id: int, update_id: int, kind: str) -> UpdateState:
    inserted = await conn.fetchval(
        "INSERT INTO bot_gateway.processed_updates (bot_id, update_id, kind) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        bot_id, update_id, kind,
    )
    if inserted:
        return "new"
    replied = await conn.fetchval(
        "SELECT replied_at FROM bot_gateway.processed_updates WHERE bot_id = $1 AND update_id = $2",
        bot_id, update_id,
    )
    return "done" if replied is not None else "pending"


async def begin_update(pool: asyncpg.Pool, bot_id: int, update_id: int, kind: str) -> UpdateState:
    """Claim an update: "new" the first time, "pending" if a previous run did not finish
    replying (crash), "done" if it was fully handled (a duplicate)."""
    async with pool.acquire() as conn:
        return await _begin(conn, bot_id, update_id, kind)


async def mark_replied(pool: asyncpg.Pool, bot_id: int, update_id: int) -> None:
    await pool.execute(
        "UPDATE bot_gateway.processed_updates SET replied_at = now()"
        " WHERE bot_id = $1 AND update_id = $2",
        bot_id, update_id,
    )


async def record_start(pool: asyncpg.Pool, outbox: Outbox, event: BotStarted) -> UpdateState:
    """Bind the user to the /start token and queue BotStarted, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        state = await _begin(conn, event.bot_id, event.update_id, "start")
        if state != "new":
            return state
        await conn.execute(
            """
            INSERT INTO bot_gateway.users (bot_id, telegram_user_id, chat_id, username,
                first_name, language_code, tracking_token, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (bot_id, telegram_user_id) DO UPDATE SET
                chat_id = EXCLUDED.chat_id, username = EXCLUDED.username,
                first_name = EXCLUDED.first_name, language_code = EXCLUDED.language_code,
                -- an organic /start does not erase the last ad touch
                tracking_token = coalesce(EXCLUDED.tracking_token, users.tracking_token),
                payload = EXCLUDED.payload, last_start_at = now(), blocked_at = NULL
            """,
            event.bot_id, event.telegram_user_id, event.chat_id, event.username,
            event.first_name, event.language_code, event.tracking_token, event.payload,
        )
        await conn.execute(
            "INSERT INTO bot_gateway.user_tokens (bot_id, telegram_user_id, update_id,"
            " tracking_token, payload, event_id) VALUES ($1, $2, $3, $4, $5, $6)",
            event.bot_id, event.telegram_user_id, event.update_id, event.tracking_token,
            event.payload, event.event_id,
        )
        await outbox.add(conn, event)
        return "new"


async def get_user(pool: asyncpg.Pool, bot_id: int, user_id: int) -> BotUser | None:
    row = await pool.fetchrow(
        "SELECT chat_id, tracking_token, blocked_at FROM bot_gateway.users"
        " WHERE bot_id = $1 AND telegram_user_id = $2",
        bot_id, user_id,
    )
    if row is None:
        return None
    return BotUser(bot_id, user_id, row["chat_id"], row["tracking_token"],
                   row["blocked_at"] is not None)


async def set_blocked(
    pool: asyncpg.Pool, bot_id: int, user_id: int, chat_id: int, blocked: bool
) -> None:
    await pool.execute(
        """
        INSERT INTO bot_gateway.users (bot_id, telegram_user_id, chat_id, blocked_at)
        VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)
        ON CONFLICT (bot_id, telegram_user_id) DO UPDATE SET
            blocked_at = CASE WHEN $4 THEN coalesce(users.blocked_at, now()) END
        """,
        bot_id, user_id, chat_id, blocked,
    )


async def claim_delivery(
    pool: asyncpg.Pool, event: PaymentConfirmed, lease_seconds: float
) -> ClaimState:
    """Claim the right to send this payment's delivery message.

    "done": already sent (or refused for good); "busy": another worker claimed it
    less than `lease_seconds` ago; "claimed": send now, then `mark_delivered`.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO bot_gateway.deliveries (payment_id, bot_id, telegram_user_id,"
            " event_id, delivery_url) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            event.payment_id, event.bot_id, event.telegram_user_id, event.event_id,
            event.delivery_url,
        )
        row = await conn.fetchrow(
            """
            UPDATE bot_gateway.deliveries SET claimed_at = now(), attempts = attempts + 1
            WHERE payment_id = $1 AND sent_at IS NULL AND failed_reason IS NULL
              AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $2))
            RETURNING attempts
            """,
            event.payment_id, lease_seconds,
        )
        if row is not None:
            return "claimed"
        finished = await conn.fetchval(
            "SELECT sent_at IS NOT NULL OR failed_reason IS NOT NULL"
            " FROM bot_gateway.deliveries WHERE payment_id = $1",
            event.payment_id,
        )
        return "done" if finished else "busy"


async def mark_delivered(pool: asyncpg.Pool, payment_id: str) -> None:
    await pool.execute(
        "UPDATE bot_gateway.deliveries SET sent_at = now() WHERE payment_id = $1", payment_id
    )


async def mark_delivery_failed(pool: asyncpg.Pool, payment_id: str, reason: str) -> None:
    await pool.execute(
        "UPDATE bot_gateway.deliveries SET failed_reason = $2 WHERE payment_id = $1",
        payment_id, reason[:500],
    )


async def release_delivery(pool: asyncpg.Pool, payment_id: str) -> None:
    """Telegram was unavailable: let the next attempt claim it at once."""
    await pool.execute(
        "UPDATE bot_gateway.deliveries SET claimed_at = NULL WHERE payment_id = $1", payment_id
    )


async def get_funnel(pool: asyncpg.Pool | asyncpg.Connection, bot_id: int) -> FunnelConfig | None:
    raw = await pool.fetchval("SELECT config FROM bot_gateway.funnels WHERE bot_id = $1", bot_id)
    return FunnelConfig.model_validate(raw) if raw is not None else None


async def set_funnel(
    pool: asyncpg.Pool | asyncpg.Connection, bot_id: int, config: FunnelConfig
) -> None:
    await pool.execute(
        "INSERT INTO bot_gateway.funnels (bot_id, config) VALUES ($1, $2)"
        " ON CONFLICT (bot_id) DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
        bot_id, config.model_dump(mode="json"),
    )
