"""`grim replay`: rebuild the projection with a rule version, side by side, then diff.

The replay is a second projector worker (a subprocess) with its own projection
name, hence its own Faust app id: a new consumer group that starts at the
beginning of the stage topics, new changelogs, its own attributed hop. It records
the conversions it would send without publishing them; `--send` then publishes
only those the dispatcher's ledger has not accepted and that Meta still takes
(event_time inside the 7-day window).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from grim_schemas import ConversionRequested
from grim_schemas.topics import TOPICS
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grim.db import create_pool
from grim.kafka import EventPublisher, make_producer
from grim.topics_admin import create_topics

from . import queries
from .handlers import BOT_USER_STAGES, TOKEN_STAGES
from .rules import rule_for
from .settings import ProjectorSettings

META_WINDOW = timedelta(days=7)
# Meta refuses the whole request when one event is older than 7 days: keep a margin
# for the time the dispatcher may take to deliver.
SEND_MARGIN = timedelta(hours=1)


@dataclass
class Progress_:
    processed: int
    total: int
    lag: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay_settings(settings: ProjectorSettings, rules: int, since: datetime | None,
                    name: str | None) -> ProjectorSettings:
    rule_for(rules)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # the CLI takes UTC times without an offset
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return settings.model_copy(update={
        "projector_projection": name or f"replay-r{rules}-{stamp}",
        "projector_rule_version": rules,
        "projector_emit_conversions": False,
        "projector_replay_from": since,
        "projector_port": _free_port(),
        "projector_data_dir": tempfile.mkdtemp(prefix="grim-replay-"),
        # Everything is already in the topics: a fact still waiting once the replay has
        # caught up will never find its /start, so decide it promptly.
        "projector_pending_timeout_s": min(settings.projector_pending_timeout_s, 3.0),
        "projector_tick_interval_s": 0.5,
    })


def worker_env(settings: ProjectorSettings) -> dict[str, str]:
    env = dict(os.environ)
    for field_name in settings.model_fields:
        value = getattr(settings, field_name)
        if value is None:
            env.pop(f"GRIM_{field_name.upper()}", None)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, datetime):
            value = value.isoformat()
        env[f"GRIM_{field_name.upper()}"] = str(value)
    return env


class Watcher:
    """Consumer-group progress of a projector app on its input topics."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self.sources = [settings.topic(s) for s in (*BOT_USER_STAGES, *TOKEN_STAGES)]
        self.hop = settings.attributed_topic()

    async def __aenter__(self) -> Watcher:
        boot = self.settings.kafka_bootstrap
        self.admin = AIOKafkaAdminClient(bootstrap_servers=boot)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=boot, enable_auto_commit=False)
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        # Partition counts come from the registry: metadata of a topic this client has
        # not subscribed to is not fetched eagerly by aiokafka.
        counts = {spec.name(self.settings.namespace): spec.partitions
                  for spec in (*TOPICS.values(), *self.settings.internal_topics())}
        tps = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        return await self.consumer.end_offsets(tps)

    async def committed(self) -> dict[TopicPartition, int]:
        offsets = await self.admin.list_consumer_group_offsets(self.settings.app_id())
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def progress(self, target: dict[TopicPartition, int]) -> tuple[Progress_, int]:
        done = await self.committed()
        processed = sum(min(done.get(tp, 0), end) for tp, end in target.items())
        total = sum(target.values())
        hop_ends = await self.ends([self.hop])
        hop_lag = sum(max(0, end - done.get(tp, 0)) for tp, end in hop_ends.items())
        return Progress_(processed, total, total - processed), hop_lag


async def _pending(port: int) -> float | None:
    """The worker's pending-facts gauge, from its /metrics page."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        body = (await asyncio.wait_for(reader.read(), 5)).decode(errors="replace")
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()
    for line in body.splitlines():
        if line.startswith("grim_projector_pending_facts "):
            return float(line.split()[1])
    return None


async def run_worker_until_caught_up(rs: ProjectorSettings, *, timeout: float,
                                     console: Console | None = None) -> None:
    """Start a replay worker, show its progress, stop it once it has caught up."""
    console = console or Console()
    log_path = Path(rs.projector_data_dir) / "worker.log"
    caught_up = False
    await create_topics(rs.kafka_bootstrap, rs.namespace, rs.internal_topics())
    async with Watcher(rs) as watcher:
        target = await watcher.ends(watcher.sources)
        with open(log_path, "ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from grim.cli.main import main; main()",
                "projector", "run", "--loglevel", "warning",
                env=worker_env(rs), stdout=log, stderr=asyncio.subprocess.STDOUT)
        try:
            await _follow(watcher, target, rs, proc, timeout, console)
            caught_up = True
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    if caught_up:
        # The replay's table state lives on in its changelog topics; the local copy and
        # the log of a replay that went well can go (a failed one keeps them for reading).
        shutil.rmtree(rs.projector_data_dir, ignore_errors=True)


async def _follow(watcher: Watcher, target: dict[TopicPartition, int], rs: ProjectorSettings,
                  proc: asyncio.subprocess.Process, timeout: float, console: Console) -> None:
    started = time.monotonic()
    settled = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} events"),
               TextColumn("lag {task.fields[lag]}"), TextColumn("{task.fields[rate]:.0f} ev/s"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"replay {rs.projector_projection}", total=sum(target.values()),
                            lag=0, rate=0.0)
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"replay worker exited with {proc.returncode}; see "
                                   f"{Path(rs.projector_data_dir) / 'worker.log'}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"replay did not catch up within {timeout:.0f}s")
            prog, hop_lag = await watcher.progress(target)
            elapsed = max(time.monotonic() - started, 1e-3)
            bar.update(task, completed=prog.processed, lag=prog.lag + hop_lag,
                       rate=prog.processed / elapsed)
            pending = await _pending(rs.projector_port)
            caught_up = prog.lag == 0 and hop_lag == 0 and pending == 0
            settled = settled + 1 if caught_up else 0
            if settled >= 3:
                return
            await asyncio.sleep(0.5)


async def run_replay(settings: ProjectorSettings, rules: int, since: datetime | None, *,
                     send: bool, name: str | None, timeout: float,
                     console: Console | None = None) -> queries.Diff:
    console = console or Console()
    rs = replay_settings(settings, rules, since, name)
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        base = await queries.current_projection(pool)
        await run_worker_until_caught_up(rs, timeout=timeout, console=console)
        await pool.execute("UPDATE projector.projections SET finished_at = now() WHERE name = $1",
                           rs.projector_projection)
        result = await queries.diff(pool, base or "main", rs.projector_projection)
        print_diff(result, console)
        if send:
            sent = await send_new_conversions(pool, settings, rs.projector_projection)
            console.print(f"sent {sent} new conversions to the dispatcher")
        return result
    finally:
        await pool.close()


def print_diff(d: queries.Diff, console: Console) -> None:
    console.print(f"[bold]diff[/bold] {d.base} -> {d.replay}: {len(d.changed)} re-attributed, "
                  f"{len(d.newly_attributed)} newly attributed, {len(d.lost)} no longer "
                  f"attributed, {len(d.added)} only in replay, {len(d.removed)} only in base; "
                  f"conversions: {d.conversions_changed} changed, {d.conversions_new} new")
    table = Table("payment", "pool", "paid", "before", "after")
    for r in d.changed + d.newly_attributed + d.lost + d.added + d.removed:
        before = r["old_token"] or r["old_attribution"] or "-"
        after = r["new_token"] or r["new_attribution"] or "-"
        table.add_row(r["payment_id"], r["pool"], "yes" if r["paid"] else "no", before, after)
    if table.row_count:
        console.print(table)
    pools = Table("pool", "payments changed", "of which paid")
    for p in d.per_pool:
        pools.add_row(p["pool"], str(p["payments"]), str(p["paid"]))
    if pools.row_count:
        console.print(pools)


async def send_new_conversions(pool: asyncpg.Pool, settings: ProjectorSettings,
                               projection: str) -> int:
    """Publish the replay's conversions Meta never accepted and would still take."""
    exists = await pool.fetchval("SELECT to_regclass('dispatcher.ledger') IS NOT NULL")
    if not exists:
        raise RuntimeError("dispatcher.ledger does not exist: run `grim db migrate` first")
    oldest = datetime.now(UTC) - META_WINDOW + SEND_MARGIN
    rows = await pool.fetch("""
        SELECT c.payload FROM projector.conversions c
        WHERE c.projection = $1 AND c.event_time >= $2
          AND NOT EXISTS (SELECT 1 FROM dispatcher.ledger l WHERE l.pixel_id = c.pixel_id
                          AND l.event_name = c.event_name AND l.event_id = c.event_id)
        ORDER BY c.event_time""", projection, oldest)
    events = [ConversionRequested.model_validate(r["payload"]) for r in rows]
    if not events:
        return 0
    producer = make_producer(settings, "projector-replay")
    await producer.start()
    try:
        await EventPublisher(producer, settings.namespace).publish_many(events)
    finally:
        await producer.stop()
    return len(events)


async def promote_latest(settings: ProjectorSettings, name: str | None) -> str:
    """Switch readers (`grim report`, dashboards) to a finished replay."""
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        target = name or await pool.fetchval(
            "SELECT name FROM projector.projections WHERE finished_at IS NOT NULL "
            "AND name <> 'main' ORDER BY finished_at DESC LIMIT 1")
        if target is None:
            raise RuntimeError("no finished replay to promote")
        found = await pool.fetchval(
            "SELECT finished_at IS NOT NULL OR name = 'main' FROM projector.projections "
            "WHERE name = $1", target)
        if not found:
            raise RuntimeError(f"projection {target!r} does not exist or has not finished")
        await pool.execute(
            "INSERT INTO projector.current (name) VALUES ($1) ON CONFLICT (singleton) "
            "DO UPDATE SET name = EXCLUDED.name, promoted_at = now()", target)
        Console().print(f"readers now use projection [bold]{target}[/bold]")
        return target
    finally:
        await pool.close()
