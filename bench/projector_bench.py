"""Projector benchmark: end-to-end join throughput against the raw consume rate.

    .venv/bin/python bench/projector_bench.py [--funnels 4000]

Uses the running local stack (GRIM_KAFKA_BOOTSTRAP, GRIM_DATABASE_URL) in a
private topic namespace and a scratch database, both removed at the end.
Prints, from one run:
  - raw: aiokafka consuming the same stage topics from the beginning (records/s);
  - join: stage events/s from the topics into the Postgres projection and the
    conversions topic by one `grim projector run` worker (from its first committed
    offset to the last fact projected, so process start-up is not counted);
  - the worker's CPU time per event (steadier than wall clock on a shared machine);
  - a Faust agent that does nothing, on the same topics (the floor Faust's per-record
    path puts under the join: the join moves each stage fact through Faust twice);
  - the same handlers in memory, without Faust, Kafka or Postgres (CPU ceiling);
  - their ratio, and the bytes of table state per active token (latest value of
    every key in both changelogs, divided by the number of tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import cpu_seconds
from grim_projector.handlers import BOT_USER_STAGES, TOKEN_STAGES
from grim_projector.replay import Watcher, _free_port, worker_env
from grim_projector.settings import ProjectorSettings

from grim.db import create_pool
from grim.kafka import EventPublisher, make_producer
from grim.migrate import migrate
from grim.topics_admin import create_topics
from tests.unit.projector.funnels import build
from tests.unit.projector.sim import FakeEvent, Simulation


async def handlers_only(events: list) -> float:
    """The pure join (decode, decide, build rows and conversions) without Faust, Kafka or
    Postgres, in big batches: the ceiling the Python code itself puts on one core."""
    sim = Simulation()
    messages = [sim.message(e) for e in events]
    step1 = {sim.settings.topic(s) for s in BOT_USER_STAGES}
    first = [FakeEvent(m) for m in messages if m.topic in step1]
    second = [FakeEvent(m) for m in messages if m.topic not in step1]
    started = time.perf_counter()
    for i in range(0, len(first), 1000):
        await sim.handlers.bot_user_batch(first[i:i + 1000])
    second += [FakeEvent(m) for m in sim.attributed_queue]
    for i in range(0, len(second), 1000):
        await sim.handlers.token_batch(second[i:i + 1000])
    return len(events) / (time.perf_counter() - started)


async def raw_consume(settings: ProjectorSettings, topics: list[str], expect: int) -> float:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < expect:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
        assert started is not None
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def faust_floor_worker(bootstrap: str, app_id: str, expect: int, topics: list[str],
                       batch: int, within: float) -> None:
    """A Faust agent that does nothing with the records (run in its own process): what
    Faust's per-record path costs alone, configured like the projector's agents."""
    import faust
    import mode.loop

    mode.loop.use("uvloop")  # as the worker does (grim_projector.bootstrap.run_worker)
    # The app id starts with the run's namespace: the topics Faust creates for it (its
    # assignor's) are removed with the run's.
    app = faust.App(app_id, broker=f"kafka://{bootstrap}",
                    store="memory://", web_enabled=False, autodiscover=False,
                    consumer_auto_offset_reset="earliest", stream_buffer_maxsize=8192,
                    broker_commit_every=1000, logging_config=None)
    seen = {"n": 0, "first": 0, "wall": 0.0, "cpu": 0.0}

    @app.agent(app.topic(*topics, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw"), concurrency=1)
    async def count_records(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch, within=within):
            if not seen["n"]:
                # The clock starts with the first batch, so that batch is not counted.
                seen["wall"], seen["cpu"] = time.perf_counter(), time.process_time()
                seen["first"] = len(events)
            seen["n"] += len(events)
            if seen["n"] >= expect:
                measured = seen["n"] - seen["first"]
                wall = time.perf_counter() - seen["wall"]
                cpu = time.process_time() - seen["cpu"]
                if measured < 1000:  # a batch or two: no rate worth printing
                    print("nan nan", flush=True)
                else:
                    print(f"{measured / wall} {cpu / measured * 1e6}", flush=True)
                os._exit(0)  # measured: no need for Faust's orderly shutdown

    del count_records
    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


async def faust_floor(settings: ProjectorSettings, topics: list[str],
                      expect: int) -> tuple[float, float]:
    """(records/s, CPU us per record) of the do-nothing Faust agent on the same topics."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--faust-floor", settings.kafka_bootstrap,
        f"{settings.namespace}bench-floor", str(expect),
        str(settings.projector_batch_size), str(settings.projector_batch_within_s), *topics,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    rate, cpu_us = out.decode().split()
    return float(rate), float(cpu_us)


async def changelog_bytes(settings: ProjectorSettings) -> tuple[int, int]:
    """(bytes of the latest value of every key, number of keys) over both tables."""
    topics = [f"{settings.app_id()}-{t}-changelog" for t in ("bot_user_to_facts",
                                                             "token_to_journey")]
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=f"bench-state-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    latest: dict[tuple[str, bytes | None], int] = {}
    try:
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for r in records:
                    latest[(tp.topic, r.key)] = len(r.value or b"") + len(r.key or b"")
    finally:
        await consumer.stop()
    return sum(latest.values()), len(latest)


async def _batch_metrics(port: int) -> str:
    """Batch count and time per step, from the worker's /metrics (where the time goes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    keep = ("grim_projector_batch_seconds_count", "grim_projector_batch_seconds_sum",
            "grim_projector_attributions_total",
            "grim_projector_projection_write_seconds_sum",
            "grim_projector_projection_write_seconds_count")
    return "\n".join(line for line in body.splitlines() if line.startswith(keep))


async def main(funnels: int) -> None:
    base = ProjectorSettings()
    run_id = uuid.uuid4().hex[:8]
    database = f"grim_bench_{run_id}"
    admin_conn = await asyncpg.connect(base.database_url)
    await admin_conn.execute(f'CREATE DATABASE "{database}"')
    await admin_conn.close()
    data_dir = tempfile.mkdtemp(prefix="grim-bench-")
    settings = base.model_copy(update={
        "namespace": f"bench{run_id}.",
        "database_url": base.database_url.rsplit("/", 1)[0] + f"/{database}",
        "projector_data_dir": data_dir, "projector_port": 0})
    proc = None
    try:
        await migrate(settings.database_url)
        await create_topics(settings.kafka_bootstrap, settings.namespace)
        events, expected = build(funnels, funnels // 20, seed=1)
        producer = make_producer(settings, "bench", linger_ms=20, max_batch_size=1 << 20)
        await producer.start()
        try:
            publisher = EventPublisher(producer, settings.namespace)
            for i in range(0, len(events), 5000):
                await publisher.publish_many(events[i:i + 5000])
        finally:
            await producer.stop()
        sources = [settings.topic(s) for s in (*BOT_USER_STAGES, *TOKEN_STAGES)]
        raw_rate = await raw_consume(settings, sources, len(events))
        floor_rate, floor_cpu_us = await faust_floor(settings, sources, len(events))
        pure_rate = await handlers_only(events)

        port = _free_port()
        env = worker_env(settings.model_copy(update={"projector_port": port}))
        log_fd = os.open(Path(data_dir) / "worker.log", os.O_WRONLY | os.O_CREAT, 0o644)
        try:  # the worker keeps its own copy of the descriptor
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from grim.cli.main import main; main()", "projector",
                "run", "--loglevel", "warning", env=env, stdout=log_fd,
                stderr=asyncio.subprocess.STDOUT)
        finally:
            os.close(log_fd)
        pool = await create_pool(settings.database_url, max_size=1)
        async with Watcher(settings) as watcher:
            first = None
            cpu_first = 0.0
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"worker exited; see {data_dir}/worker.log")
                committed = await watcher.committed()
                if first is None and any(committed.values()):
                    first = time.perf_counter()
                    cpu_first = cpu_seconds(proc.pid)
                paid = await pool.fetchval(
                    "SELECT count(*) FROM projector.conversions WHERE event_name = 'Purchase'")
                facts = await pool.fetchval("SELECT count(*) FROM projector.facts")
                want_purchases = sum(1 for n, _ in expected.conversions if n == "Purchase")
                stage_facts = sum(1 for e in events if e.type not in ("click", "click_cookies"))
                if paid >= want_purchases and facts >= stage_facts:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - (first or time.perf_counter())
            worker_cpu = cpu_seconds(proc.pid) - cpu_first
        await pool.close()
        batch_metrics = await _batch_metrics(port)
        print(batch_metrics)
        # Every stage fact crosses Faust twice: as itself, then as its StageAttributed.
        hops = len(events) + sum(float(line.rsplit(" ", 1)[1]) for line in batch_metrics
                                 .splitlines() if line.startswith("grim_projector_attributions"))
        join_rate = len(events) / max(elapsed, 1e-6)
        state_bytes, keys = await changelog_bytes(settings)
        tokens = len(expected.tokens)
        print(f"events: {len(events)} ({funnels} funnels, {tokens} tokens)")
        print(f"raw aiokafka consume: {raw_rate:,.0f} records/s")
        print(f"projector join:       {join_rate:,.0f} events/s "
              f"(ratio {join_rate / raw_rate:.3f} to raw)")
        print(f"worker CPU:           {worker_cpu / len(events) * 1e6:,.0f} us per event "
              f"(ceiling {len(events) / max(worker_cpu, 1e-6):,.0f} events/s on one free core)")
        if math.isnan(floor_rate):
            print("bare Faust agent:     not measured (too few records; use --funnels 2000+)")
        else:
            print(f"bare Faust agent:     {floor_rate:,.0f} records/s, {floor_cpu_us:,.0f} us CPU"
                  f" per record; the join moves {hops / len(events):.2f} records per event"
                  f" through Faust = {floor_cpu_us * hops / len(events):,.0f} us per event"
                  " before any work")
        print(f"handlers alone:       {pure_rate:,.0f} events/s (no Faust/Kafka/Postgres)")
        print(f"table state: {state_bytes:,} bytes in {keys} keys = "
              f"{state_bytes / max(tokens, 1):,.0f} bytes per active token")
    finally:
        if proc is not None and proc.returncode is None:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass  # it exited on its own in the meantime
            await proc.wait()
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
        conn = await asyncpg.connect(base.database_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--faust-floor"]:
        boot, app_id, expect, batch, within, *topics = sys.argv[2:]
        faust_floor_worker(boot, app_id, int(expect), topics, int(batch), float(within))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--funnels", type=int, default=4000)
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    asyncio.run(main(parser.parse_args().funnels))
