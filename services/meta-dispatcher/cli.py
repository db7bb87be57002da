"""`grim dispatcher run` and `grim dlq list|show|retry`."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from grim.cli.errors import fail, handle_errors

console = Console()
app = typer.Typer(no_args_is_help=True)
dlq_app = typer.Typer(no_args_is_help=True)


@app.command("run")
@handle_errors
def run(
    port: int = typer.Option(None, help="Port of /healthz, /readyz, /metrics (default 8105)."),
    no_http: bool = typer.Option(False, "--no-http", help="Do not serve the ops endpoints."),
) -> None:
    """Consume conversions and deliver them to Meta's Conversions API (until SIGTERM)."""
    import uvloop

    from grim.logs import configure_logging

    from .bootstrap import run as run_worker
    from .settings import DispatcherSettings

    settings = DispatcherSettings()
    if port is not None:
        settings = settings.model_copy(update={"dispatcher_port": port})
    configure_logging("dispatcher", settings.log_level)
    # uvloop: ~10% less CPU per event than the default loop (socket writes, scheduling).
    uvloop.run(run_worker(settings, serve_http=not no_http))


@app.command("fake-graph")
def fake_graph(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8202),
    fault_rate: float = typer.Option(0.0, help="Share of requests answered with a fault."),
) -> None:
    """Run the strict fake Graph API (for the demo and evaluations without a real pixel)."""
    from grim.sandbox.graph import serve

    serve(host=host, port=port, fault_rate=fault_rate)


async def _with_pool(action):  # type: ignore[no-untyped-def]
    from grim.db import create_pool
    from grim.settings import GrimSettings

    pool = await create_pool(GrimSettings().database_url, max_size=2)
    try:
        return await action(pool)
    finally:
        await pool.close()


@dlq_app.command("list")
@handle_errors
def dlq_list(
    pixel: str = typer.Option(None, help="Only this pixel."),
    kind: str = typer.Option(None, help="Only this kind (invalid_events, invalid_token, too_old"
                                        ", ...)."),
    include_retried: bool = typer.Option(False, "--all", help="Include retried entries."),
    limit: int = typer.Option(100),
) -> None:
    """Conversions parked in the DLQ, newest first."""
    from .dlq_admin import list_entries

    rows = asyncio.run(_with_pool(lambda pool: list_entries(
        pool, pixel_id=pixel, kind=kind, include_retried=include_retried, limit=limit)))
    table = Table("pixel", "event", "event_id", "kind", "reason", "parked_at", "retried")
    for r in rows:
        table.add_row(r["pixel_id"], r["event_name"], r["event_id"], r["kind"],
                      r["reason"][:60], r["parked_at"].isoformat(timespec="seconds"),
                      "yes" if r["retried_at"] else "")
    console.print(table)
    console.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


@dlq_app.command("show")
@handle_errors
def dlq_show(event_id: str = typer.Argument(..., help="The conversion's event_id.")) -> None:
    """Everything parked for one event id: reason, Graph error and the conversion."""
    from .dlq_admin import show_entries

    rows = asyncio.run(_with_pool(lambda pool: show_entries(pool, event_id)))
    if not rows:
        fail(f"no dead-lettered conversion with event_id {event_id!r}")
    print(json.dumps(rows, indent=2, default=str))


@dlq_app.command("retry")
@handle_errors
def dlq_retry(
    event_id: str = typer.Option(None, "--event-id", help="Re-send this event."),
    pixel: str = typer.Option(None, help="Re-send every pending entry of this pixel."),
    kind: str = typer.Option(None, help="Re-send every pending entry of this kind."),
    all_pending: bool = typer.Option(False, "--all-pending", help="Re-send every pending entry."),
) -> None:
    """Publish parked conversions again once the cause is fixed (e.g. a new access token)."""
    from grim.kafka import EventPublisher, make_producer
    from grim.settings import GrimSettings

    from .dlq_admin import retry_entries

    settings = GrimSettings()

    async def action(pool):  # type: ignore[no-untyped-def]
        producer = make_producer(settings, "grim-dlq-retry")
        await producer.start()
        try:
            return await retry_entries(
                pool, EventPublisher(producer, settings.namespace), event_id=event_id,
                pixel_id=pixel, kind="*" if all_pending and not kind else kind,
            )
        finally:
            await producer.stop()

    count = asyncio.run(_with_pool(action))
    console.print(f"re-published {count} conversion(s) to {settings.topic('conversions')}")
