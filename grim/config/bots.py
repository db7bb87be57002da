"""Telegram bots of the seller configuration (table config.bots).

A bot's id is Telegram's own (the number before ':' in its token). The token and
the webhook secret are stored encrypted; the secret is what Telegram echoes in
X-Telegram-Bot-Api-Secret-Token.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import asyncpg

from grim.crypto import SecretBox

_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{30,64}$")


class InvalidBotToken(ValueError):
    pass


@dataclass(frozen=True)
class Bot:
    id: int
    username: str
    enabled: bool
    healthy: bool


@dataclass(frozen=True)
class BotSecrets:
    token: str
    webhook_secret: str


def bot_id_from_token(token: str) -> int:
    match = _TOKEN.match(token)
    if not match:
        raise InvalidBotToken("a bot token looks like 123456789:AA... (digits, colon, 30+ chars)")
    return int(match.group(1))


def new_webhook_secret() -> str:
    # Telegram allows 1-256 chars of A-Z a-z 0-9 _ -.
    return secrets.token_urlsafe(32)


async def upsert_bot(
    conn: asyncpg.Connection | asyncpg.Pool,
    box: SecretBox,
    *,
    token: str,
    username: str,
    webhook_secret: str | None = None,
    enabled: bool = True,
) -> Bot:
    bot_id = bot_id_from_token(token)
    secret = webhook_secret or new_webhook_secret()
    row = await conn.fetchrow(
        """
        INSERT INTO config.bots (id, username, token_enc, webhook_secret_enc, enabled)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username,
            token_enc = EXCLUDED.token_enc, webhook_secret_enc = EXCLUDED.webhook_secret_enc,
            enabled = EXCLUDED.enabled, updated_at = now()
        RETURNING id, username, enabled, healthy
        """,
        bot_id, username, box.encrypt(token), box.encrypt(secret), enabled,
    )
    return Bot(**dict(row))


async def get_bot(conn: asyncpg.Connection | asyncpg.Pool, bot_id: int) -> Bot | None:
    row = await conn.fetchrow(
        "SELECT id, username, enabled, healthy FROM config.bots WHERE id = $1", bot_id
    )
    return Bot(**dict(row)) if row else None


async def list_bots(conn: asyncpg.Connection | asyncpg.Pool) -> list[Bot]:
    rows = await conn.fetch("SELECT id, username, enabled, healthy FROM config.bots ORDER BY id")
    return [Bot(**dict(r)) for r in rows]


async def get_bot_secrets(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, bot_id: int
) -> BotSecrets | None:
    row = await conn.fetchrow(
        "SELECT token_enc, webhook_secret_enc FROM config.bots WHERE id = $1", bot_id
    )
    if row is None:
        return None
    return BotSecrets(box.decrypt(row["token_enc"]), box.decrypt(row["webhook_secret_enc"]))


async def set_bot_flags(
    conn: asyncpg.Connection | asyncpg.Pool,
    bot_id: int,
    *,
    enabled: bool | None = None,
    healthy: bool | None = None,
) -> Bot | None:
    row = await conn.fetchrow(
        """
        UPDATE config.bots SET enabled = coalesce($2, enabled), healthy = coalesce($3, healthy),
            updated_at = now()
        WHERE id = $1 RETURNING id, username, enabled, healthy
        """,
        bot_id, enabled, healthy,
    )
    return Bot(**dict(row)) if row else None


async def get_bot_by_username(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> Bot | None:
    row = await conn.fetchrow(
        "SELECT id, username, enabled, healthy FROM config.bots WHERE lower(username) = lower($1)",
        username.lstrip("@"),
    )
    return Bot(**dict(row)) if row else None
