"""Benchmark: Telegram webhook ingestion under wrk, beside a bare FastAPI endpoint.

    .venv/bin/python bench/bot_gateway_bench.py [--duration 10] [--connections 50]

Uses the shared local stack (Kafka, PostgreSQL, Redis) with a private database
and topic namespace, both removed at the end. Starts two single-worker uvicorn
processes on free 127.0.0.1 ports: the real gateway (`grim bot-gateway serve`)
and a baseline endpoint that only reads and parses the JSON body. The gateway
runs as an ingestion replica (GRIM_BOT_GATEWAY_RUN_CONSUMERS=false, the
deployment deploy/README.md describes for webhook traffic), so the funnel's
work on the same 2 cores does not count against ingestion; `--with-consumers`
measures a gateway that also runs the funnel and delivery consumers. Every
request carries a new update_id (wrk Lua), so the gateway does the whole path:
secret check, Redis dedup lookup, publish with acks=all, Redis mark. Prints
throughput, p50/p99 and ratios for a saturating run (median of alternating rounds)
and for a paced run of about 1,000 requests/s (connections pause between
requests, the pause calibrated on each server so both are offered the same rate).
Target (issue 4): gateway >= 60% of the baseline's throughput, p99 < 25 ms at 1,000 req/s.
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

import orjson
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
from fastapi import FastAPI, Request, Response

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BOT_ID = 900000777
SECRET = "bench-secret_0123456789"
# One realistic private-chat text message; update_id and message_id vary per request.
LUA = """
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = "%(secret)s"
request = function()
  counter = counter + 1
  local body = string.format('{"update_id":%%d,"message":{"message_id":%%d,"date":1795358831,'
    .. '"chat":{"id":%%d,"type":"private","first_name":"Ana","username":"ana"},'
    .. '"from":{"id":%%d,"is_bot":false,"first_name":"Ana","username":"ana",'
    .. '"language_code":"pt-br"},"text":"quero saber mais sobre o curso"}}',
    %(base)d + counter, counter, 8000000000 + counter %% 500, 8000000000 + counter %% 500)
  return wrk.format(nil, nil, nil, body)
end
%(delay)s
"""


def baseline_app():  # type: ignore[no-untyped-def]
    """Reads and parses the update, answers 200: the floor of any webhook."""
    app = FastAPI()

    @app.post("/webhook/telegram/{bot_id}")
    async def webhook(bot_id: int, request: Request) -> Response:
        update = orjson.loads(await request.body())
        assert isinstance(update.get("update_id"), int)
        return Response(b'{"ok":true}', media_type="application/json")

    return app


class Scripts:
    """wrk scripts whose update_ids never repeat across runs (a repeat is a cheap duplicate)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs = 0

    def __call__(self, pause_ms: int | None = None) -> str:
        self.runs += 1
        path = self.workdir / f"run{self.runs}.lua"
        path.write_text(LUA % {"secret": SECRET, "base": 10**9 * self.runs,
                               "delay": delay_lua(pause_ms)})
        return str(path)


async def prepare(namespace: str) -> tuple[str, str]:
    """A private database and namespace with one bot; returns (database, dsn)."""
    import asyncpg

    from grim.config.bots import upsert_bot
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
    await create_topics(base.kafka_bootstrap, namespace)
    db = await asyncpg.connect(dsn)
    try:
        await upsert_bot(db, SecretBox(base.secret_key.get_secret_value()),
                         token=f"{BOT_ID}:AA{'x' * 33}", username="bench_gw_bot",
                         webhook_secret=SECRET)
    finally:
        await db.close()
    return database, dsn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating baseline/gateway saturated runs (medians reported)")
    parser.add_argument("--paced-connections", type=int, default=40)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="offered req/s of the paced run")
    parser.add_argument("--with-consumers", action="store_true",
                        help="run the funnel and delivery consumers in the measured process")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    namespace = f"bench{uuid.uuid4().hex[:6]}."
    database, dsn = asyncio.run(prepare(namespace))
    workdir = Path(tempfile.mkdtemp(prefix="grim-bench-"))
    gw_port, base_port = free_port(), free_port()
    env = {**os.environ, "GRIM_NAMESPACE": namespace, "GRIM_DATABASE_URL": dsn,
           "GRIM_LOG_LEVEL": "WARNING", "GRIM_TELEGRAM_API_BASE": "http://127.0.0.1:9",
           "GRIM_BOT_GATEWAY_RUN_CONSUMERS": "true" if args.with_consumers else "false"}
    procs = [
        subprocess.Popen([PYTHON, "-m", "grim.cli.main", "bot-gateway", "serve",
                          "--port", str(gw_port)], env=env, cwd=workdir,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([PYTHON, "-m", "uvicorn", "--factory", "bot_gateway_bench:baseline_app",
                          "--port", str(base_port), "--no-access-log", "--log-level", "warning"],
                         env={**env, "PYTHONPATH": str(Path(__file__).parent)}, cwd=workdir),
    ]
    path = f"/webhook/telegram/{BOT_ID}"
    try:
        gw_url = f"http://127.0.0.1:{gw_port}{path}"
        base_url = f"http://127.0.0.1:{base_port}{path}"
        wait_http(f"http://127.0.0.1:{gw_port}/healthz")
        wait_http(f"http://127.0.0.1:{base_port}/docs")
        print("gateway:", "webhook and consumers in one process" if args.with_consumers
              else "ingestion replica (consumers not running)")
        scripts = Scripts(workdir)
        gw_pid, base_pid = procs[0].pid, procs[1].pid
        run_wrk(gw_url, 2, 10, scripts())  # warm-up: caches and connections
        run_wrk(base_url, 2, 10, scripts())
        report(f"saturated ({args.connections} connections, {args.duration}s, median of"
               f" {args.rounds} alternating rounds)", *alternate(
                   args.rounds,
                   lambda: run_wrk(base_url, args.duration, args.connections, scripts(), base_pid),
                   lambda: run_wrk(gw_url, args.duration, args.connections, scripts(), gw_pid)),
               "gateway")
        report(f"paced (~{args.rate:,.0f} req/s offered by {args.paced_connections} connections)",
               paced_wrk(base_url, args.rate, args.duration, args.paced_connections, scripts,
                         base_pid),
               paced_wrk(gw_url, args.rate, args.duration, args.paced_connections, scripts,
                         gw_pid), "gateway")
        print("\ntarget: gateway/baseline req/s >= 0.60 saturated; gateway p99 < 25 ms paced"
              " at ~1,000 req/s")
    finally:
        stop_processes(procs)
        asyncio.run(cleanup(database, namespace))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
