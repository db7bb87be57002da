"""`grim demo`, `grim simulate` and `grim services up|down|status`."""

from __future__ import annotations

import asyncio
import time

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grim.cli.errors import fail, handle_errors
from grim.demo.settings import DemoSettings

console = Console()
services_app = typer.Typer(no_args_is_help=True, help="All Grim services and sandbox fakes.")
demo_app = typer.Typer(invoke_without_command=True)
simulate_app = typer.Typer(invoke_without_command=True)


def _env(settings: DemoSettings) -> dict[str, str]:
    from grim.demo.supervisor import service_env

    return service_env(settings)


def _wait_ready(settings: DemoSettings, timeout: float) -> None:
    from grim.demo.supervisor import service_specs

    specs = service_specs(settings)
    deadline = time.monotonic() + timeout
    with console.status("waiting for every service to be ready") as status:
        pending = list(specs)
        while pending:
            for spec in list(pending):
                try:
                    if httpx.get(spec.ready_url, timeout=2).status_code == 200:
                        pending.remove(spec)
                except httpx.HTTPError:
                    pass
            status.update(f"waiting for {', '.join(s.name for s in pending)}")
            if pending and time.monotonic() > deadline:
                fail(f"not ready after {timeout:.0f}s: {[s.name for s in pending]}; logs in "
                     f"{settings.demo_run_dir}/services/ (stop everything with "
                     f"`grim services down`)")
            time.sleep(0.3)


def _up(settings: DemoSettings, timeout: float) -> None:
    from grim.demo.daemon import spawn

    pid = spawn(settings, _env(settings))
    console.print(f"supervisor started (pid {pid}); logs in {settings.demo_run_dir}/services/")
    _wait_ready(settings, timeout)


@services_app.command("up")
@handle_errors
def services_up(timeout: float = typer.Option(120.0, help="Seconds to wait for readiness.")
                ) -> None:
    """Start every service and sandbox fake under a supervisor that restarts crashed ones."""
    settings = DemoSettings()
    _up(settings, timeout)
    services_status()


@services_app.command("down")
@handle_errors
def services_down() -> None:
    """Stop the supervisor and every service it started (no orphans)."""
    from grim.demo.daemon import stop

    console.print("stopped" if stop(DemoSettings()) else "nothing was running")


@services_app.command("status")
def services_status() -> None:
    """Each service: pid, readiness, address, log."""
    from pathlib import Path

    from grim.demo.supervisor import service_specs

    settings = DemoSettings()
    folder = Path(settings.demo_run_dir).resolve() / "services"
    table = Table("service", "pid", "ready", "address", "log")
    for spec in service_specs(settings):
        pidfile = folder / f"{spec.name}.pid"
        pid = pidfile.read_text().split()[0] if pidfile.exists() else "-"
        try:
            ready = httpx.get(spec.ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        table.add_row(spec.name, pid, "[green]yes[/]" if ready else "[red]no[/]", spec.base_url,
                      str(folder / f"{spec.name}.log"))
    console.print(table)


def _progress_run(settings: DemoSettings, seller, clicks: int, rate: float, seed: int):  # type: ignore[no-untyped-def]
    from grim.demo.personas import build_population
    from grim.demo.simulate import Endpoints, Simulator

    people = build_population(clicks, seed, 0, 0)
    totals = {"click": sum(p.clicks for p in people), "start": sum(p.starts for p in people),
              "pix": sum(p.charges for p in people), "paid": sum(p.pays for p in people),
              "done": len(people)}
    labels = {"click": "ad clicks", "start": "/start", "pix": "PIX charges", "paid": "payments",
              "done": "funnels"}
    endpoints = Endpoints(settings.redirect_url, settings.bot_gateway_url, settings.telegram_url,
                          settings.sandbox_url)
    with Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        tasks = {k: progress.add_task(labels[k], total=n) for k, n in totals.items()}

        async def main():  # type: ignore[no-untyped-def]
            async with httpx.AsyncClient(timeout=20) as http:
                sim = Simulator(endpoints, seller, http=http,
                                progress=lambda stage: progress.advance(tasks[stage]))
                return await sim.run(clicks, seed=seed, rate=rate)

        return asyncio.run(main())


async def _seed(settings: DemoSettings, webhooks: bool = True):  # type: ignore[no-untyped-def]
    from grim.db import create_pool
    from grim.demo.seed import register_webhooks, seed_demo

    db = await create_pool(settings.database_url, max_size=2)
    try:
        seller = await seed_demo(settings, db)
    finally:
        await db.close()
    if webhooks:
        await register_webhooks(settings, seller.bots)
    return seller


async def _baseline(settings: DemoSettings):  # type: ignore[no-untyped-def]
    from grim.db import create_pool
    from grim.demo.summary import baseline

    db = await create_pool(settings.database_url, max_size=2)
    try:
        return await baseline(db)
    finally:
        await db.close()


async def _drain(settings: DemoSettings, truth, timeout: float, before):  # type: ignore[no-untyped-def]
    from grim.db import create_pool
    from grim.demo.summary import drain

    db = await create_pool(settings.database_url, max_size=2)
    try:
        return await drain(settings, db, truth, timeout=timeout, before=before)
    finally:
        await db.close()


def _report(settings: DemoSettings, seller, truth, timeout: float, before) -> bool:  # type: ignore[no-untyped-def]
    from grim.demo.summary import print_outcome, print_urls

    with console.status("waiting for the pipeline to drain (projection and CAPI)"):
        outcome = asyncio.run(_drain(settings, truth, timeout, before))
    print_outcome(console, truth, outcome)
    print_urls(console, settings, seller.pool_slug)
    return outcome.drained and (outcome.verdict is None or outcome.verdict.ok)


@simulate_app.callback()
@handle_errors
def simulate(
    clicks: int = typer.Option(60, min=1, help="Funnels (visitors) to play."),
    rate: float = typer.Option(20.0, min=0.1, help="Funnels started per second."),
    seed: int = typer.Option(7, help="Same seed, same population."),
    drain_timeout: float = typer.Option(120.0, help="Seconds to wait for the pipeline."),
) -> None:
    """Play ad clicks, Telegram updates and PIX payments against the running services
    (the demo seller must exist: `grim demo` seeds it), then report against the ground truth."""
    settings = DemoSettings()
    seller = asyncio.run(_seed(settings, webhooks=False))
    before = asyncio.run(_baseline(settings))
    truth = _progress_run(settings, seller, clicks, rate, seed)
    if not _report(settings, seller, truth, drain_timeout, before):
        raise typer.Exit(1)


@demo_app.callback()
@handle_errors
def demo(
    clicks: int = typer.Option(60, min=1, help="Funnels (visitors) to simulate."),
    rate: float = typer.Option(20.0, min=0.1, help="Funnels started per second."),
    seed: int = typer.Option(7, help="Simulator seed."),
    stop: bool = typer.Option(False, "--stop", help="Stop the services at the end."),
    ready_timeout: float = typer.Option(180.0, help="Seconds to wait for the services."),
    drain_timeout: float = typer.Option(120.0, help="Seconds to wait for the pipeline."),
) -> None:
    """The whole product locally: stack, migrations, topics, every service with sandbox
    stand-ins, a demo seller, simulated traffic, then the attribution and CAPI report.

    Real Meta test events: set GRIM_DEMO_PIXEL_ID, GRIM_DEMO_META_ACCESS_TOKEN and
    GRIM_DEMO_TEST_EVENT_CODE (Events Manager > Test events)."""
    import os

    from grim.demo.daemon import stop as stop_services
    from grim.migrate import migrate
    from grim.stack import Stack, StackConfig
    from grim.topics_admin import create_topics

    console.rule("local stack: Kafka, PostgreSQL, Redis")
    stack = Stack(StackConfig.from_env(), echo=lambda m: console.print(m, markup=False))
    stack.up()
    os.environ.update({k: v for k, v in stack.env().items() if k not in os.environ})
    settings = DemoSettings()
    applied = asyncio.run(migrate(settings.database_url))
    console.print(f"migrations applied: {len(applied)}")
    asyncio.run(create_topics(settings.kafka_bootstrap, settings.namespace))
    console.rule("seller and services")
    seller = asyncio.run(_seed(settings, webhooks=False))
    console.print(f"demo seller: pool /go/{seller.pool_slug}, bots "
                  f"{', '.join('@' + b.username for b in seller.bots)}, pixel {seller.pixel_id}"
                  + (" (REAL Meta, test events)" if settings.real_meta else " (fake Graph)"))
    _up(settings, ready_timeout)
    asyncio.run(_seed(settings, webhooks=True))
    console.rule(f"simulating {clicks} funnels")
    before = asyncio.run(_baseline(settings))
    truth = _progress_run(settings, seller, clicks, rate, seed)
    console.rule("report")
    ok = _report(settings, seller, truth, drain_timeout, before)
    if stop:
        stop_services(settings)
        console.print("services stopped")
    else:
        console.print("services keep running: stop them with [bold]grim services down[/] "
                      "(and the stack with [bold]grim stack down[/])")
    if not ok:
        raise typer.Exit(1)
