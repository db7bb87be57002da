"""Benchmark: /go/{slug} under wrk, beside a bare FastAPI endpoint serving the same page.

    .venv/bin/python bench/redirect_bench.py [--duration 10] [--connections 50]

Uses the shared local stack (Kafka, PostgreSQL, Redis) with a private database
and topic namespace, both removed at the end. Starts two single-worker uvicorn
processes on free 127.0.0.1 ports: the real redirect (`grim redirect serve`)
and a baseline that renders the same bridge page with no Kafka, PostgreSQL or
Redis. Prints throughput, p50/p99 and ratios for a saturating run and for a
paced run of about 1,000 requests/s (wrk has no rate option: connections
pause between requests through its Lua `delay()`, a pause calibrated on each
server so that the offered rate is the same).
Target (issue 3): redirect >= 60% of the baseline's throughput, p99 < 25 ms at 1,000 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from benchlib import (
    alternate,
    cleanup,
    delay_lua,
    free_port,
    paced_wrk,
    report,
    run_wrk,
    stop_processes,
    wait_http,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
UA = ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko)"
      " Chrome/131.0.0.0 Mobile Safari/537.36")


def baseline_app():  # type: ignore[no-untyped-def]
    """The same page, rendered per request with a fresh token, and nothing else."""
    import uuid as _uuid

    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from grim_redirect.page import render_bridge, telegram_url

    app = FastAPI()

    @app.get("/go/{slug}", response_class=HTMLResponse)
    async def go(slug: str) -> HTMLResponse:
        token = _uuid.uuid4().hex
        return HTMLResponse(render_bridge(
            pixel_id="123456789012345", event_id=f"evt_{token}", token=token,
            telegram=telegram_url("bench_a_bot", token), beacon_url="/api/tracking/cookies",
            delay_ms=800,
        ), headers={"Cache-Control": "no-store"})

    return app


async def prepare(env: dict[str, str]) -> tuple[str, str, str]:
    """A private database and namespace with one pool (pixel, two bots); returns (db, dsn, slug)."""
    import asyncpg

    from grim.config.bots import upsert_bot
    from grim.config.pixels import upsert_pixel
    from grim.config.pools import create_pool, set_pool_bot
    from grim.crypto import SecretBox
    from grim.migrate import migrate
    from grim.settings import GrimSettings
    from grim.topics_admin import create_topics

    base = GrimSettings()
    database = f"grim_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.database_url)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    dsn = base.database_url.rsplit("/", 1)[0] + f"/{database}"
    await migrate(dsn)
    await create_topics(base.kafka_bootstrap, env["GRIM_NAMESPACE"])
    box = SecretBox(base.secret_key.get_secret_value())
    db = await asyncpg.connect(dsn)
    try:
        await upsert_pixel(db, box, pixel_id="123456789012345")
        await create_pool(db, slug="bench", pixel_id="123456789012345")
        for n, weight in ((1, 1), (2, 3)):
            bot = await upsert_bot(db, box, token=f"90000000{n}:AA{'x' * 33}",
                                   username=f"bench_{n}_bot")
            await set_pool_bot(db, "bench", bot.id, weight=weight)
    finally:
        await db.close()
    return database, dsn, "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating baseline/redirect saturated runs (medians reported)")
    parser.add_argument("--paced-connections", type=int, default=40)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="offered req/s of the paced run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    namespace = f"bench{uuid.uuid4().hex[:6]}."
    env = {**os.environ, "GRIM_NAMESPACE": namespace}
    database, dsn, slug = asyncio.run(prepare(env))
    workdir = Path(tempfile.mkdtemp(prefix="grim-bench-"))
    redirect_port, base_port = free_port(), free_port()
    env.update({"GRIM_DATABASE_URL": dsn, "GRIM_REDIRECT_SPOOL_DIR": str(workdir / "spool"),
                "GRIM_LOG_LEVEL": "WARNING"})
    procs = [
        subprocess.Popen([PYTHON, "-m", "grim.cli.main", "redirect", "serve",
                          "--port", str(redirect_port)], env=env, cwd=workdir,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([PYTHON, "-m", "uvicorn", "--factory", "redirect_bench:baseline_app",
                          "--port", str(base_port), "--no-access-log", "--log-level", "warning"],
                         env={**env, "PYTHONPATH": str(Path(__file__).parent)}, cwd=workdir),
    ]
    try:
        redirect_url = f"http://127.0.0.1:{redirect_port}/go/{slug}?fbclid=IwAR-bench&utm_source=fb"
        base_url = f"http://127.0.0.1:{base_port}/go/{slug}?fbclid=IwAR-bench&utm_source=fb"
        wait_http(redirect_url)
        wait_http(base_url)
        ua = (f"User-Agent: {UA}",)
        run_wrk(redirect_url, 2, 10, headers=ua)  # warm-up: caches and connections
        run_wrk(base_url, 2, 10, headers=ua)
        redirect_pid, base_pid = procs[0].pid, procs[1].pid
        report(f"saturated ({args.connections} connections, {args.duration}s, median of"
               f" {args.rounds} alternating rounds)", *alternate(
                   args.rounds,
                   lambda: run_wrk(base_url, args.duration, args.connections, pid=base_pid,
                                   headers=ua),
                   lambda: run_wrk(redirect_url, args.duration, args.connections,
                                   pid=redirect_pid, headers=ua)), "redirect")
        def script_for(pause_ms: int | None) -> str:
            lua = workdir / f"paced-{pause_ms}.lua"
            lua.write_text(delay_lua(pause_ms))
            return str(lua)

        report(f"paced (~{args.rate:,.0f} req/s offered by {args.paced_connections} connections)",
               paced_wrk(base_url, args.rate, args.duration, args.paced_connections, script_for,
                         base_pid, ua),
               paced_wrk(redirect_url, args.rate, args.duration, args.paced_connections,
                         script_for, redirect_pid, ua), "redirect")
        print("\ntarget: redirect/baseline req/s >= 0.60 saturated; redirect p99 < 25 ms paced"
              " at ~1,000 req/s")
    finally:
        stop_processes(procs)
        asyncio.run(cleanup(database, namespace))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
