"""Registering the webhook with Telegram (setWebhook / getWebhookInfo)."""

from __future__ import annotations

from typing import Any

import httpx
from grim_bot_gateway.directory import BotEntry
from grim_bot_gateway.ratelimit import RateLimiter
from grim_bot_gateway.settings import BotGatewaySettings
from grim_bot_gateway.telegram_client import TelegramClient
from grim_bot_gateway.updates import ALLOWED_UPDATES


def webhook_url(public_url: str, bot_id: int) -> str:
    return f"{public_url.rstrip('/')}/webhook/telegram/{bot_id}"


def _client(settings: BotGatewaySettings, http: httpx.AsyncClient) -> TelegramClient:
    return TelegramClient(settings.telegram_api_base, http, RateLimiter(0, 0),
                          max_attempts=3, backoff=settings.telegram_backoff_seconds)


async def set_webhook(settings: BotGatewaySettings, bot: BotEntry,
                      max_connections: int | None = None) -> dict[str, Any]:
    """Point Telegram at our webhook with the bot's secret; returns what was registered."""
    params = {
        "url": webhook_url(settings.bot_gateway_public_url, bot.id),
        "secret_token": bot.webhook_secret,
        "allowed_updates": list(ALLOWED_UPDATES),
        "max_connections": max_connections or settings.webhook_max_connections,
    }
    async with httpx.AsyncClient(timeout=settings.telegram_timeout_seconds) as http:
        await _client(settings, http).call(bot.id, bot.token, "setWebhook", params)
    return {k: v for k, v in params.items() if k != "secret_token"}


async def webhook_info(settings: BotGatewaySettings, bot: BotEntry) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=settings.telegram_timeout_seconds) as http:
        result = await _client(settings, http).call(bot.id, bot.token, "getWebhookInfo", {})
    return result if isinstance(result, dict) else {}
