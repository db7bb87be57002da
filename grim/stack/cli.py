"""`grim stack up|down|status|logs`: the local Kafka, PostgreSQL and Redis."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from grim.stack import procs
from grim.stack.base import ComponentStatus
from grim.stack.config import StackConfig
from grim.stack.errors import StackError
from grim.stack.manager import Stack

T = TypeVar("T")

app = typer.Typer(
    help=(
        "Local Kafka (KRaft), PostgreSQL and Redis for development and tests, run from "
        "the run dir (GRIM_RUN_DIR, default <repo>/.run) without Docker. Ports: "
        "GRIM_STACK_KAFKA_PORT (19092), GRIM_STACK_POSTGRES_PORT (15432), "
        "GRIM_STACK_REDIS_PORT (16379). A component whose GRIM_KAFKA_BOOTSTRAP / "
        "GRIM_DATABASE_URL / GRIM_REDIS_URL is set is external: checked, never started."
    ),
    no_args_is_help=True,
)

console = Console()
errors = Console(stderr=True)

STATE_STYLE = {"running": "green", "external": "cyan", "stopped": "dim", "failed": "bold red"}


def _echo(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _stack() -> Stack:
    return Stack(StackConfig.from_env(), echo=_echo)


@contextmanager
def _clean_errors() -> Iterator[None]:
    """A StackError is a message for the operator, not a traceback."""
    try:
        yield
    except StackError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


def _run(action: Callable[[Stack], T]) -> T:
    with _clean_errors():
        return action(_stack())


def _table(statuses: list[ComponentStatus]) -> Table:
    table = Table(show_lines=False)
    for column in ("component", "state", "pid", "address", "log", "detail"):
        table.add_column(column, overflow="fold")
    for st in statuses:
        style = STATE_STYLE.get(st.state, "")
        cells = [st.name, st.state, str(st.pid or "-"), st.address, str(st.log_path or "-")]
        # Values are text, not markup: error details often hold "[Errno 111]".
        row = [escape(cell) for cell in [*cells, st.detail]]
        row[1] = f"[{style}]{row[1]}[/]" if style else row[1]
        table.add_row(*row)
    return table


@app.command()
def up() -> None:
    """Start whatever is not running yet and wait until every component answers.

    Safe to repeat. The first run fetches the Kafka jars with Maven and formats storage,
    initialises PostgreSQL (role and database grim) and prints the GRIM_* variables.
    """
    with _clean_errors():
        stack = _stack()
        statuses = stack.up()
        console.print(_table(statuses))
        for key, value in stack.env().items():
            _echo(f"export {key}={value}")


@app.command()
def down() -> None:
    """Stop the servers this run dir started (SIGTERM, then SIGKILL after a grace).

    External servers and processes not started from this run dir are never touched.
    Data stays in the run dir; the next `up` continues from it.
    """
    _run(lambda stack: stack.down())


@app.command()
def status() -> None:
    """Show each component: running, stopped, external or failed, and whether it answers.

    Exits 1 when a component has failed or an external one does not answer.
    """
    statuses = _run(lambda stack: stack.status())
    console.print(_table(statuses))
    unhealthy = [s for s in statuses if s.state == "failed" or s.detail.startswith("not answering")]
    if unhealthy:
        raise typer.Exit(1)


def _follow(paths: dict[str, Path]) -> None:
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in paths.items()}
    prefix = len(paths) > 1
    while True:
        for name, path in paths.items():
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < offsets[name]:
                offsets[name] = 0  # truncated or recreated
            if size == offsets[name]:
                continue
            with open(path, "rb") as fh:
                fh.seek(offsets[name])
                chunk = fh.read()
            offsets[name] += len(chunk)
            for line in chunk.decode(errors="replace").splitlines():
                sys.stdout.write(f"{name} | {line}\n" if prefix else f"{line}\n")
            sys.stdout.flush()
        time.sleep(0.5)


@app.command()
def logs(
    component: Annotated[
        str | None,
        typer.Argument(help="kafka, postgres or redis; all three when omitted."),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="Lines to show from the end.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
) -> None:
    """Print the end of a component's log file (kafka.log, postgres.log, redis.log)."""
    with _clean_errors():
        stack = Stack(StackConfig.from_env())
        chosen = [stack.component(component)] if component else stack.components
    paths: dict[str, Path] = {}
    for comp in chosen:
        if comp.external_url:
            console.print(f"{comp.name}: external at {comp.address}; no local log", markup=False)
            continue
        paths[comp.name] = comp.log_path
        if not comp.log_path.exists():
            console.print(f"{comp.name}: no log yet at {comp.log_path}", markup=False)
            continue
        if len(chosen) > 1:
            console.print(f"==> {comp.name}: {comp.log_path} <==", markup=False, highlight=False)
        text = procs.tail(comp.log_path, lines) if lines else ""
        if text:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    if follow and paths:
        try:
            _follow(paths)
        except KeyboardInterrupt:
            return


if __name__ == "__main__":
    app()
