"""Admin API for bots and their funnels (mounted by the admin app behind bearer auth).

No auth here: the admin app enforces `Authorization: Bearer GRIM_ADMIN_TOKEN`.
It expects `app.state.db` (an asyncpg pool) and `app.state.settings` (GrimSettings).
Bot tokens and webhook secrets are write-only: no route returns them.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request
from grim_bot_gateway import store
from grim_bot_gateway.directory import BotEntry
from grim_bot_gateway.funnel import FunnelConfig
from grim_bot_gateway.settings import BotGatewaySettings
from grim_bot_gateway.telegram_client import TelegramError, TelegramUnavailable
from grim_bot_gateway.webhook_setup import set_webhook, webhook_info
from pydantic import BaseModel, ConfigDict, Field

from grim.config import bots as bot_repo
from grim.crypto import SecretBox

router = APIRouter(tags=["bots and funnels"])


def _db(request: Request) -> asyncpg.Pool:
    return request.app.state.db


def _settings(request: Request) -> BotGatewaySettings:
    given = request.app.state.settings
    if isinstance(given, BotGatewaySettings):
        return given
    return BotGatewaySettings(**given.model_dump())


Db = Annotated[asyncpg.Pool, Depends(_db)]
Settings = Annotated[BotGatewaySettings, Depends(_settings)]


class BotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=100, description="From @BotFather")
    username: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
    webhook_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$")
    enabled: bool = True


class BotUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    healthy: bool | None = None


class BotPublic(BaseModel):
    id: int
    username: str
    enabled: bool
    healthy: bool
    has_funnel: bool = False


class WebhookSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_connections: int | None = Field(default=None, ge=1, le=100)


async def _public(db: asyncpg.Pool, bot: bot_repo.Bot) -> BotPublic:
    funnel = await store.get_funnel(db, bot.id)
    return BotPublic(id=bot.id, username=bot.username, enabled=bot.enabled,
                     healthy=bot.healthy, has_funnel=funnel is not None)


async def _entry(db: asyncpg.Pool, settings: BotGatewaySettings, bot_id: int) -> BotEntry:
    bot = await bot_repo.get_bot(db, bot_id)
    box = SecretBox(settings.secret_key.get_secret_value())
    secrets = await bot_repo.get_bot_secrets(db, box, bot_id)
    if bot is None or secrets is None:
        raise HTTPException(404, f"no bot {bot_id}")
    return BotEntry(bot.id, bot.username, bot.enabled, secrets.token, secrets.webhook_secret)


@router.get("/bots", response_model=list[BotPublic], summary="List bots (no secrets)")
async def list_bots(db: Db) -> list[BotPublic]:
    return [await _public(db, b) for b in await bot_repo.list_bots(db)]


@router.post("/bots", response_model=BotPublic, status_code=201, responses={422: {}},
             summary="Add or replace a bot (token and webhook secret stored encrypted)")
async def add_bot(body: BotCreate, db: Db, settings: Settings) -> BotPublic:
    box = SecretBox(settings.secret_key.get_secret_value())
    try:
        bot = await bot_repo.upsert_bot(db, box, token=body.token, username=body.username,
                                        webhook_secret=body.webhook_secret,
                                        enabled=body.enabled)
    except bot_repo.InvalidBotToken as exc:
        raise HTTPException(422, str(exc)) from None
    except asyncpg.UniqueViolationError:
        raise HTTPException(409, f"username {body.username} belongs to another bot") from None
    return await _public(db, bot)


@router.get("/bots/{bot_id}", response_model=BotPublic, responses={404: {}})
async def get_bot(bot_id: int, db: Db) -> BotPublic:
    bot = await bot_repo.get_bot(db, bot_id)
    if bot is None:
        raise HTTPException(404, f"no bot {bot_id}")
    return await _public(db, bot)


@router.patch("/bots/{bot_id}", response_model=BotPublic, responses={404: {}})
async def update_bot(bot_id: int, body: BotUpdate, db: Db) -> BotPublic:
    bot = await bot_repo.set_bot_flags(db, bot_id, enabled=body.enabled, healthy=body.healthy)
    if bot is None:
        raise HTTPException(404, f"no bot {bot_id}")
    return await _public(db, bot)


@router.get("/bots/{bot_id}/funnel", response_model=FunnelConfig, responses={404: {}})
async def get_funnel(bot_id: int, db: Db) -> FunnelConfig:
    funnel = await store.get_funnel(db, bot_id)
    if funnel is None:
        raise HTTPException(404, f"bot {bot_id} has no funnel")
    return funnel


@router.put("/bots/{bot_id}/funnel", response_model=FunnelConfig, responses={404: {}, 422: {}},
            summary="Replace a bot's funnel (running gateways pick it up within seconds)")
async def put_funnel(bot_id: int, body: FunnelConfig, db: Db) -> FunnelConfig:
    if await bot_repo.get_bot(db, bot_id) is None:
        raise HTTPException(404, f"no bot {bot_id}")
    await store.set_funnel(db, bot_id, body)
    return body


@router.post("/bots/{bot_id}/webhook", responses={404: {}, 502: {}},
             summary="Register the webhook with Telegram (setWebhook with the bot's secret)")
async def register_webhook(bot_id: int, body: WebhookSet, db: Db,
                           settings: Settings) -> dict[str, Any]:
    entry = await _entry(db, settings, bot_id)
    try:
        return await set_webhook(settings, entry, body.max_connections)
    except (TelegramError, TelegramUnavailable) as exc:
        raise HTTPException(502, f"telegram: {exc}") from None


@router.get("/bots/{bot_id}/webhook", responses={404: {}, 502: {}},
            summary="Telegram's getWebhookInfo for this bot")
async def get_webhook(bot_id: int, db: Db, settings: Settings) -> dict[str, Any]:
    entry = await _entry(db, settings, bot_id)
    try:
        return await webhook_info(settings, entry)
    except (TelegramError, TelegramUnavailable) as exc:
        raise HTTPException(502, f"telegram: {exc}") from None
