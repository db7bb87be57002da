"""CLI: `grim redirect serve`, `grim pools ...`, `grim pixels ...`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from grim.cli.errors import fail, handle_errors
from grim.config import pixels as pixel_repo
from grim.config import pools as pool_repo
from grim.config.bots import list_bots
from grim.crypto import SecretBox

from .settings import RedirectSettings

console = Console()
app = typer.Typer(no_args_is_help=True, help="The ad-link redirect service.")
pools_app = typer.Typer(no_args_is_help=True, help="Pools of bots behind /go/<slug>.")
pixels_app = typer.Typer(no_args_is_help=True, help="Meta pixels (CAPI tokens stored encrypted).")

T = TypeVar("T")


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="Default GRIM_REDIRECT_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Default GRIM_REDIRECT_PORT (8101)."),
) -> None:
    """Serve /go/<slug> and the cookie beacon (with the click outbox relay)."""
    import uvicorn

    from grim.logs import configure_logging

    from .app import create_app

    settings = RedirectSettings()
    configure_logging("redirect")
    uvicorn.run(create_app(settings), host=host or settings.redirect_host,
                port=port or settings.redirect_port, log_config=None, access_log=False)


def _run(work: Callable[[object, RedirectSettings], Awaitable[T]]) -> T:
    from grim.db import create_pool

    settings = RedirectSettings()

    async def main() -> T:
        db = await create_pool(settings.database_url, max_size=2)
        try:
            return await work(db, settings)
        finally:
            await db.close()

    return asyncio.run(main())


def _print_pools(pools: list[pool_repo.Pool]) -> None:
    table = Table("slug", "id", "enabled", "pixel", "bots (weight, state)")
    for p in pools:
        bots = ", ".join(
            f"@{b.username} ({b.weight}, {'ok' if b.usable else 'off'})" for b in p.bots
        ) or "-"
        table.add_row(p.slug, str(p.id), "yes" if p.enabled else "no", p.pixel_id or "-", bots)
    console.print(table)


async def _bot_id(db: object, bot: str) -> int:
    if bot.isdigit():
        return int(bot)
    wanted = bot.lstrip("@").lower()
    for known in await list_bots(db):  # type: ignore[arg-type]
        if known.username.lower() == wanted:
            return known.id
    fail(f"unknown bot {bot!r}: register it first (bot-gateway)")


@pools_app.command("create")
@handle_errors
def pools_create(
    slug: str,
    name: str = typer.Option("", help="A name for people."),
    pixel: str | None = typer.Option(None, help="Pixel id (create it with `grim pixels set`)."),
    enabled: bool = typer.Option(True, "--enabled/--disabled"),
) -> None:
    """Create a pool; its link is /go/<slug>."""
    pool = _run(lambda db, _: pool_repo.create_pool(db, slug=slug, name=name, enabled=enabled,
                                                    pixel_id=pixel))
    _print_pools([pool])


@pools_app.command("list")
@handle_errors
def pools_list() -> None:
    """List pools and their bots."""
    _print_pools(_run(lambda db, _: pool_repo.list_pools(db)))


@pools_app.command("update")
@handle_errors
def pools_update(
    slug: str,
    name: str | None = typer.Option(None),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
    pixel: str | None = typer.Option(None, help="Attach this pixel id."),
    no_pixel: bool = typer.Option(False, "--no-pixel", help="Detach the pixel (plain 302)."),
) -> None:
    """Rename, pause/resume, or change the pixel of a pool."""
    changes: dict[str, object] = {"name": name, "enabled": enabled}
    if pixel is not None and no_pixel:
        fail("use either --pixel or --no-pixel")
    if pixel is not None or no_pixel:
        changes["pixel_id"] = pixel
    pool = _run(lambda db, _: pool_repo.update_pool(db, slug, **changes))  # type: ignore[arg-type]
    if pool is None:
        fail(f"unknown pool {slug!r}")
    _print_pools([pool])


@pools_app.command("add-bot")
@handle_errors
def pools_add_bot(
    slug: str,
    bot: str = typer.Argument(..., help="Bot id or @username."),
    weight: int | None = typer.Option(None, help="Share of the traffic, 1-1000 (default 1)."),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
) -> None:
    """Add a bot to a pool, or change its weight or enabled flag."""

    async def work(db: object, _: RedirectSettings) -> pool_repo.Pool:
        return await pool_repo.set_pool_bot(db, slug, await _bot_id(db, bot),  # type: ignore[arg-type]
                                            weight=weight, enabled=enabled)

    _print_pools([_run(work)])


@pools_app.command("remove-bot")
@handle_errors
def pools_remove_bot(
    slug: str, bot: str = typer.Argument(..., help="Bot id or @username.")
) -> None:
    """Take a bot out of a pool."""

    async def work(db: object, _: RedirectSettings) -> bool:
        return await pool_repo.remove_pool_bot(db, slug, await _bot_id(db, bot))  # type: ignore[arg-type]

    if not _run(work):
        fail(f"bot {bot} is not in pool {slug!r}")
    console.print(f"removed {bot} from {slug}")


@pixels_app.command("set")
@handle_errors
def pixels_set(
    pixel_id: str,
    name: str = typer.Option(""),
    access_token: str | None = typer.Option(
        None, envvar="GRIM_PIXEL_ACCESS_TOKEN",
        help="CAPI access token (better from the env var than the shell history); omit to keep.",
    ),
    events: str = typer.Option(",".join(pixel_repo.ALL_EVENTS), help="Comma-separated."),
    test_event_code: str | None = typer.Option(None),
    action_source: str = typer.Option("website"),
) -> None:
    """Create or update a pixel."""
    if not pixel_id.isdigit() or len(pixel_id) > 32:
        fail("a pixel id is 1-32 digits")
    enabled = tuple(e.strip() for e in events.split(",") if e.strip())

    async def work(db: object, settings: RedirectSettings) -> pixel_repo.Pixel:
        box = SecretBox(settings.secret_key.get_secret_value())
        return await pixel_repo.upsert_pixel(
            db, box, pixel_id=pixel_id, name=name, access_token=access_token,  # type: ignore[arg-type]
            enabled_events=enabled, test_event_code=test_event_code, action_source=action_source,
        )

    _print_pixels([_run(work)])


@pixels_app.command("list")
@handle_errors
def pixels_list() -> None:
    """List pixels (tokens are never shown)."""
    _print_pixels(_run(lambda db, _: pixel_repo.list_pixels(db)))  # type: ignore[arg-type]


def _print_pixels(pixels: list[pixel_repo.Pixel]) -> None:
    table = Table("pixel", "name", "events", "token", "test code", "flag")
    for p in pixels:
        table.add_row(p.pixel_id, p.name, ",".join(p.enabled_events),
                      "set" if p.has_access_token else "-", p.test_event_code or "-",
                      p.flagged_reason or "-")
    console.print(table)
