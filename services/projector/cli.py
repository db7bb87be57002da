"""`grim projector run`, `grim report`, `grim replay`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from grim.cli.errors import handle_errors

app = typer.Typer(no_args_is_help=True, help="The attribution projector (Faust worker).")


@app.command("run")
@handle_errors
def run(
    projection: str = typer.Option(None, help="Projection name (default: GRIM_PROJECTOR_PROJECTION or 'main')"),
    rules: int = typer.Option(None, help="Rule version (default: GRIM_PROJECTOR_RULE_VERSION or 1)"),
    port: int = typer.Option(None, help="Web port for /metrics (default 8104)"),
    loglevel: str = typer.Option("info"),
) -> None:
    """Run the Faust worker: consume the stage topics, write the projection, emit conversions."""
    from .bootstrap import run_worker
    from .rules import RULES
    from .settings import ProjectorSettings

    overrides: dict[str, object] = {}
    if projection is not None:
        overrides["projector_projection"] = projection
    if rules is not None:
        if rules not in RULES:
            raise ValueError(f"unknown rule version {rules}; known: {sorted(RULES)}")
        overrides["projector_rule_version"] = rules
    if port is not None:
        overrides["projector_port"] = port
    settings = ProjectorSettings(**overrides)  # type: ignore[arg-type]
    run_worker(settings, loglevel=loglevel)


report_app = typer.Typer(invoke_without_command=True, help="Funnel and attribution report.")


@report_app.callback()
@handle_errors
def report(
    since: Annotated[datetime | None, typer.Option(
        "--from", help="Start of the range (UTC), by click/payment time")] = None,
    until: Annotated[datetime | None, typer.Option(
        "--to", help="End of the range (UTC, exclusive)")] = None,
    pool: str = typer.Option(None, help="Pool slug or id"),
    projection: str = typer.Option(None, help="Projection to read (default: the promoted one)"),
) -> None:
    """Print the funnel, sales per pool/campaign/ad/bot/day and attribution summary."""
    import asyncio

    from .report import print_report
    from .settings import ProjectorSettings

    asyncio.run(print_report(ProjectorSettings(), since, until, pool, projection))


replay_app = typer.Typer(invoke_without_command=True, help="Rebuild the projection side by side.")


@replay_app.callback()
@handle_errors
def replay(
    rules: int = typer.Option(None, help="Rule version to replay with"),
    since: Annotated[datetime | None, typer.Option(
        "--from", help="Only facts from this time (UTC)")] = None,
    send: bool = typer.Option(False, "--send", help="Emit new conversions (not in the ledger, < 7 days)"),
    promote: bool = typer.Option(False, "--promote", help="Switch readers to the latest replay"),
    name: str = typer.Option(None, help="Projection name (default replay-r<v>-<time>)"),
    timeout: float = typer.Option(1800.0, help="Give up after this many seconds"),
) -> None:
    """Replay the topics into a new projection, print the diff; or promote the last replay."""
    import asyncio

    from .replay import promote_latest, run_replay
    from .settings import ProjectorSettings

    settings = ProjectorSettings()
    if promote:
        asyncio.run(promote_latest(settings, name))
        return
    if rules is None:
        raise ValueError("--rules <version> is required (or --promote)")
    asyncio.run(run_replay(settings, rules, since, send=send, name=name, timeout=timeout))
