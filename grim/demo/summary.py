"""After a run: wait (bounded) for the pipeline to drain, then report attribution and CAPI
delivery, checked against the simulator's ground truth, and the URLs to open."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from grim.demo import invariants
from grim.demo.settings import DemoSettings
from grim.demo.simulate import GroundTruth

log = logging.getLogger(__name__)


async def projection_counts(db: asyncpg.Pool) -> dict[str, int]:
    """Counts of the promoted projection (or 'main' before any promotion)."""
    name = await db.fetchval("SELECT name FROM projector.current") or "main"
    row = await db.fetchrow("""
        SELECT (SELECT count(*) FROM projector.tokens
                 WHERE projection = $1 AND NOT is_crawler AND clicked_at IS NOT NULL) AS clicks,
               (SELECT count(*) FROM projector.tokens
                 WHERE projection = $1 AND is_crawler) AS crawler_hits,
               count(*) AS charges,
               count(*) FILTER (WHERE paid_at IS NOT NULL AND attribution = 'token') AS paid_token,
               count(*) FILTER (WHERE paid_at IS NOT NULL AND attribution = 'organic')
                   AS paid_organic,
               count(*) FILTER (WHERE paid_at IS NOT NULL AND attribution = 'unattributed')
                   AS paid_unattributed,
               count(*) FILTER (WHERE refunded_at IS NOT NULL) AS refunded,
               coalesce(sum(amount_cents) FILTER (WHERE paid_at IS NOT NULL), 0) AS revenue_cents
        FROM projector.payments WHERE projection = $1""", name)
    return {k: int(v) for k, v in dict(row).items()}


async def ledger_counts(db: asyncpg.Pool) -> dict[str, int]:
    rows = await db.fetch("SELECT event_name, count(*) AS n FROM dispatcher.ledger GROUP BY 1")
    out = {r["event_name"]: int(r["n"]) for r in rows}
    out["dead_letters"] = int(await db.fetchval(
        "SELECT count(*) FROM dispatcher.dead_letters WHERE retried_at IS NULL"))
    return out


async def where_stuck(db: asyncpg.Pool, payment_ids: list[str]) -> dict[str, dict[str, object]]:
    """For sales whose Purchase is missing: how far each got (payments state, outbox,
    projection, conversion asked, ledger, dead letter), to point at the stage that stalled."""
    rows = await db.fetch("""
        SELECT c.id, c.status,
               (SELECT count(*) FROM outbox.events o
                 WHERE o.published_at IS NULL
                   AND position(convert_to(c.id, 'UTF8') IN o.value) > 0)
                   AS unpublished,
               (SELECT p.paid_at IS NOT NULL FROM projector.payments p
                 WHERE p.payment_id = c.id AND p.projection = 'main') AS projected_paid,
               EXISTS (SELECT 1 FROM projector.conversions v
                        WHERE v.event_id = 'purchase_' || c.id) AS conversion_asked,
               EXISTS (SELECT 1 FROM dispatcher.ledger l
                        WHERE l.event_id = 'purchase_' || c.id) AS in_ledger,
               EXISTS (SELECT 1 FROM dispatcher.dead_letters d
                        WHERE d.event_id = 'purchase_' || c.id) AS dead_lettered
        FROM payments.charges c WHERE c.id = ANY($1::text[])""", payment_ids)
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


async def graph_events(graph_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        body = (await http.get(f"{graph_url}/_sandbox/events", params={"limit": 100000})).json()
    return list(body["events"])


async def graph_stats(graph_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        return dict((await http.get(f"{graph_url}/_sandbox/stats")).json())


@dataclass
class Outcome:
    drained: bool
    seconds: float
    projected: dict[str, int]
    ledger: dict[str, int]
    verdict: invariants.Verdict | None
    projection_problems: list[str] = field(default_factory=list)
    graph: dict[str, Any] = field(default_factory=dict)


async def _measure(settings: DemoSettings, db: asyncpg.Pool, truth: GroundTruth
                   ) -> tuple[dict[str, int], dict[str, int], invariants.Verdict | None]:
    projected = await projection_counts(db)
    ledger = await ledger_counts(db)
    verdict = None
    if not settings.real_meta:
        verdict = invariants.check(truth, await graph_events(settings.graph_url))
    return projected, ledger, verdict


async def baseline(db: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Counts before a run, so a report on a used database shows this run only."""
    return {"projected": await projection_counts(db), "ledger": await ledger_counts(db)}


def _minus(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in now.items()}


async def drain(settings: DemoSettings, db: asyncpg.Pool, truth: GroundTruth, *,
                timeout: float = 120.0, settle: float = 2.0,
                before: dict[str, dict[str, int]] | None = None) -> Outcome:
    """Poll until the projection matches the truth and every expected Purchase is accepted
    (then wait `settle` seconds more so late duplicates would show), or until `timeout`."""
    started = time.monotonic()
    drained = False
    before = before or {"projected": {}, "ledger": {}}

    async def measure() -> tuple[dict[str, int], dict[str, int], invariants.Verdict | None]:
        projected, ledger, verdict = await _measure(settings, db, truth)
        return (_minus(projected, before["projected"]), _minus(ledger, before["ledger"]),
                verdict)

    while True:
        try:
            projected, ledger, verdict = await measure()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # PostgreSQL restarting (chaos runs do it): the pool reconnects; poll again.
            if time.monotonic() - started > timeout:
                raise
            log.warning("projection poll failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(0.5)
            continue
        problems = invariants.projection_diff(truth, projected)
        sent = verdict.ok if verdict else ledger.get("Purchase", 0) >= len(
            truth.purchases_expected)
        if not problems and sent:
            drained = True
            break
        if time.monotonic() - started > timeout:
            break
        await asyncio.sleep(0.5)
    if drained and settle:
        await asyncio.sleep(settle)
        projected, ledger, verdict = await measure()
        problems = invariants.projection_diff(truth, projected)
    graph = {} if settings.real_meta else await graph_stats(settings.graph_url)
    return Outcome(drained, time.monotonic() - started, projected, ledger, verdict, problems,
                   graph)


def _brl(cents: int) -> str:
    return f"R$ {cents / 100:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


def print_outcome(console: Console, truth: GroundTruth, out: Outcome) -> None:
    counts = truth.counts()
    table = Table(title="Attribution: simulator ground truth vs. projection")
    table.add_column("measure")
    table.add_column("truth", justify="right")
    table.add_column("projection", justify="right")
    rows = [("ad clicks (people)", counts["clicks"], out.projected["clicks"]),
            ("crawler hits (flagged, not counted)", counts["crawler_hits"],
             out.projected["crawler_hits"]),
            ("PIX charges", counts["charges"], out.projected["charges"]),
            ("paid sales from ads", counts["purchases_expected"], out.projected["paid_token"]),
            ("paid organic sales (not sent to Meta)", counts["organic_paid"],
             out.projected["paid_organic"]),
            ("paid, unattributed", 0, out.projected["paid_unattributed"]),
            ("refunded", counts["refunded"], out.projected["refunded"])]
    for label, want, got in rows:
        style = "" if want == got else "bold red"
        table.add_row(label, str(want), f"[{style}]{got}[/]" if style else str(got))
    table.add_row("revenue (paid)", "", _brl(out.projected["revenue_cents"]))
    console.print(table)

    capi = Table(title="CAPI delivery of this run (dispatcher ledger: accepted by Meta)")
    capi.add_column("event")
    capi.add_column("accepted", justify="right")
    for name in ("PageView", "ViewContent", "InitiateCheckout", "Purchase"):
        capi.add_row(name, str(out.ledger.get(name, 0)))
    capi.add_row("dead-lettered (see `grim dlq list`)", str(out.ledger.get("dead_letters", 0)))
    if out.graph:
        requests = out.graph["requests"]
        faults = sum(n for k, n in requests.items() if k.startswith("fault:"))
        capi.add_row("Graph requests / faults injected",
                     f"{requests.get('total', 0)} / {faults}")
    console.print(capi)
    v = out.verdict
    if v is not None:
        console.print(
            f"Purchases: expected {v.purchases_expected}, accepted {v.purchases_accepted}, "
            f"lost [bold]{v.lost}[/], duplicates accepted [bold]{v.duplicates}[/]; PageViews "
            f"with the bridge's eventID {v.pageviews_accepted}/{v.pageviews_expected}")
        for problem in (v.violations + out.projection_problems)[:20]:
            console.print(f"  [red]✗[/] {problem}", highlight=False)
        if v.ok and not out.projection_problems:
            console.print("[green]every invariant holds[/]")
    if truth.errors:
        console.print(f"[yellow]{len(truth.errors)} simulated journeys hit an error:[/]")
        for error in truth.errors[:5]:
            console.print(f"  {error}", markup=False)
    state = "drained" if out.drained else "NOT drained (timed out)"
    console.print(f"pipeline {state} after {out.seconds:.1f}s")


def print_urls(console: Console, s: DemoSettings, slug: str) -> None:
    table = Table(title="Open these", show_header=False)
    table.add_column("what")
    table.add_column("url", overflow="fold")  # a link cut with an ellipsis is useless
    table.add_row("ad link (try it in a browser)",
                  f"{s.redirect_url}/go/{slug}?fbclid=IwAR_try_me&utm_source=facebook")
    for name, port in (("admin API", s.demo_admin_port),
                       ("redirect", s.demo_redirect_port),
                       ("bot-gateway", s.demo_bot_gateway_port),
                       ("payments", s.demo_payments_port)):
        table.add_row(f"{name} docs / metrics", f"{s.url(port)}/docs  {s.url(port)}/metrics")
    table.add_row("projector metrics", f"{s.url(s.demo_projector_port)}/metrics")
    table.add_row("dispatcher metrics", f"{s.url(s.demo_dispatcher_port)}/metrics")
    if not s.real_meta:
        table.add_row("fake Graph: accepted events", f"{s.graph_url}/_sandbox/events")
    table.add_row("fake Telegram: bot messages", f"{s.telegram_url}/_sandbox/calls")
    console.print(table)
