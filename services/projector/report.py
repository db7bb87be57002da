"""`grim report`: the funnel and attribution summary of one projection, as rich tables."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from grim.db import create_pool

from . import queries
from .settings import ProjectorSettings


def _brl(cents: int | None) -> str:
    return f"R$ {(cents or 0) / 100:,.2f}"


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # typer parses naive datetimes; the CLI speaks UTC
    return value


async def print_report(settings: ProjectorSettings, since: datetime | None,
                       until: datetime | None, pool: str | None, projection: str | None,
                       console: Console | None = None) -> None:
    console = console or Console()
    db = await create_pool(settings.database_url, max_size=1)
    try:
        name = projection or await queries.current_projection(db)
        if name is None:
            raise RuntimeError("no projection yet: is `grim projector run` running?")
        rng = queries.Range(name, _utc(since), _utc(until), pool)
        funnel = await queries.funnel(db, rng)
        sales = await queries.sales_by(db, rng)
        summary = await queries.attribution_summary(db, rng)
    finally:
        await db.close()

    console.print(f"[bold]projection[/bold] {name}  range {since or '-'} .. {until or '-'}"
                  f"  pool {pool or 'all'}")
    table = Table("clicks", "starts", "pix", "paid", "click->start", "start->pix", "pix->paid",
                  title="Funnel (clicks in range, crawlers excluded)")
    table.add_row(str(funnel["clicks"]), str(funnel["starts"]), str(funnel["pix"]),
                  str(funnel["paid"]), f"{funnel['start_rate']:.1%}",
                  f"{funnel['pix_rate']:.1%}", f"{funnel['paid_rate']:.1%}")
    console.print(table)

    table = Table("day", "pool", "campaign", "ad", "bot", "sales", "revenue",
                  title="Sales (paid in range)")
    for r in sales:
        table.add_row(str(r["day"]), r["pool"], r["campaign"], r["ad"], str(r["bot_id"] or "-"),
                      str(r["sales"]), _brl(r["revenue_cents"]))
    console.print(table)

    table = Table("attribution", "sales", "revenue", "refunds", "median time to purchase",
                  title="Attribution")
    for r in summary:
        ttp = r["median_ttp_s"]
        table.add_row(r["attribution"], str(r["sales"]), _brl(r["revenue_cents"]),
                      str(r["refunds"]), "-" if ttp is None else f"{ttp / 60:.1f} min")
    console.print(table)
