"""CLI: `grim bot-gateway serve|sandbox-telegram` and `grim bots ...`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
import typer
from grim_bot_gateway.settings import BotGatewaySettings
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from grim.cli.errors import fail, handle_errors
from grim.config import bots as bot_repo
from grim.crypto import SecretBox

console = Console()
app = typer.Typer(no_args_is_help=True)
bots_app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Listen address (default GRIM_BOT_GATEWAY_HOST)."),
    port: int = typer.Option(None, help="Listen port (default GRIM_BOT_GATEWAY_PORT, 8102)."),
) -> None:
    """Run the webhook API, the funnel consumer, the delivery consumer and the outbox relay."""
    import uvicorn
    from grim_bot_gateway.app import create_app

    from grim.logs import configure_logging

    settings = BotGatewaySettings()
    configure_logging("bot-gateway", settings.log_level)
    uvicorn.run(create_app(settings), host=host or settings.bot_gateway_host,
                port=port or settings.bot_gateway_port, log_config=None, access_log=False)


@app.command("sandbox-telegram")
def sandbox_telegram(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8201),
    allow_http_webhook: bool = typer.Option(
        False, help="Accept http:// and any port in setWebhook (local demo only)."),
) -> None:
    """Run the fake Telegram Bot API (point GRIM_TELEGRAM_API_BASE at it)."""
    import uvicorn

    from grim.sandbox.telegram import create_app

    uvicorn.run(create_app(allow_http_webhook), host=host, port=port, access_log=False)


async def _with_db(work: Callable[[asyncpg.Pool, BotGatewaySettings], Awaitable[T]]) -> T:
    from grim.db import create_pool

    settings = BotGatewaySettings()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await work(pool, settings)
    finally:
        await pool.close()


def _run(work: Callable[[asyncpg.Pool, BotGatewaySettings], Awaitable[T]]) -> T:
    return asyncio.run(_with_db(work))


async def _resolve(pool: asyncpg.Pool, bot: str) -> bot_repo.Bot:
    found = await (bot_repo.get_bot(pool, int(bot)) if bot.isdigit()
                   else bot_repo.get_bot_by_username(pool, bot))
    if found is None:
        raise ValueError(f"no bot {bot!r} (see `grim bots list`)")
    return found


async def _entry(pool: asyncpg.Pool, settings: BotGatewaySettings, bot: str) -> Any:
    from grim_bot_gateway.directory import BotEntry

    found = await _resolve(pool, bot)
    box = SecretBox(settings.secret_key.get_secret_value())
    secrets = await bot_repo.get_bot_secrets(pool, box, found.id)
    assert secrets is not None
    return BotEntry(found.id, found.username, found.enabled, secrets.token,
                    secrets.webhook_secret)


@bots_app.command("add")
@handle_errors
def bots_add(
    username: str = typer.Option(..., help="The bot's @username (without @)."),
    token: str = typer.Option(..., prompt=True, hide_input=True, envvar="GRIM_BOT_TOKEN",
                              help="Token from @BotFather (prompted when omitted)."),
    disabled: bool = typer.Option(False, help="Add it disabled (not used by pools)."),
) -> None:
    """Add or replace a bot; its token and a fresh webhook secret are stored encrypted."""

    async def work(pool: asyncpg.Pool, settings: BotGatewaySettings) -> bot_repo.Bot:
        box = SecretBox(settings.secret_key.get_secret_value())
        try:
            return await bot_repo.upsert_bot(pool, box, token=token.strip(),
                                             username=username.lstrip("@"),
                                             enabled=not disabled)
        except asyncpg.CheckViolationError:
            raise ValueError("username must be 4-32 chars: a letter, then letters, digits, _")
        except asyncpg.UniqueViolationError:
            raise ValueError(f"username {username} belongs to another bot")

    bot = _run(work)
    console.print(f"bot {bot.id} (@{bot.username}) saved; next: grim bots set-webhook {bot.id}")


@bots_app.command("list")
@handle_errors
def bots_list() -> None:
    """List bots (never their tokens)."""
    bots = _run(lambda pool, _: bot_repo.list_bots(pool))
    table = Table("id", "username", "enabled", "healthy")
    for b in bots:
        table.add_row(str(b.id), b.username, str(b.enabled), str(b.healthy))
    console.print(table)


@bots_app.command("set-webhook")
@handle_errors
def bots_set_webhook(
    bot: str = typer.Argument(..., help="Bot id or username."),
    max_connections: int = typer.Option(None, min=1, max=100),
) -> None:
    """Register <GRIM_BOT_GATEWAY_PUBLIC_URL>/webhook/telegram/<id> with Telegram."""
    from grim_bot_gateway.telegram_client import TelegramError, TelegramUnavailable
    from grim_bot_gateway.webhook_setup import set_webhook

    async def work(pool: asyncpg.Pool, settings: BotGatewaySettings) -> dict[str, Any]:
        return await set_webhook(settings, await _entry(pool, settings, bot), max_connections)

    try:
        registered = _run(work)
    except (TelegramError, TelegramUnavailable) as exc:
        fail(f"telegram refused: {exc}")
    console.print_json(orjson.dumps(registered).decode())


@bots_app.command("info")
@handle_errors
def bots_info(bot: str = typer.Argument(..., help="Bot id or username.")) -> None:
    """Show the bot and Telegram's getWebhookInfo."""
    from grim_bot_gateway.telegram_client import TelegramError, TelegramUnavailable
    from grim_bot_gateway.webhook_setup import webhook_info

    async def work(pool: asyncpg.Pool, settings: BotGatewaySettings) -> dict[str, Any]:
        entry = await _entry(pool, settings, bot)
        return {"id": entry.id, "username": entry.username, "enabled": entry.enabled,
                "webhook": await webhook_info(settings, entry)}

    try:
        info = _run(work)
    except (TelegramError, TelegramUnavailable) as exc:
        fail(f"telegram refused: {exc}")
    console.print_json(orjson.dumps(info).decode())


@bots_app.command("funnel-set")
@handle_errors
def bots_funnel_set(
    bot: str = typer.Argument(..., help="Bot id or username."),
    file: str = typer.Argument(..., help="Funnel JSON file ('-' for stdin)."),
) -> None:
    """Replace the bot's funnel from a JSON document (see `funnel-show` for the shape)."""
    from grim_bot_gateway import store
    from grim_bot_gateway.funnel import FunnelConfig

    raw = sys.stdin.read() if file == "-" else Path(file).read_text()
    try:
        config = FunnelConfig.model_validate_json(raw)
    except ValidationError as exc:
        fail("invalid funnel:\n" + "\n".join(
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))

    async def work(pool: asyncpg.Pool, _: BotGatewaySettings) -> int:
        found = await _resolve(pool, bot)
        await store.set_funnel(pool, found.id, config)
        return found.id

    console.print(f"funnel of bot {_run(work)} saved")


@bots_app.command("funnel-show")
@handle_errors
def bots_funnel_show(bot: str = typer.Argument(..., help="Bot id or username.")) -> None:
    """Print the bot's funnel as JSON (the default one when none is set)."""
    from grim_bot_gateway import store
    from grim_bot_gateway.funnel import FunnelConfig

    async def work(pool: asyncpg.Pool, _: BotGatewaySettings) -> FunnelConfig:
        found = await _resolve(pool, bot)
        return await store.get_funnel(pool, found.id) or FunnelConfig()

    console.print_json(_run(work).model_dump_json())
