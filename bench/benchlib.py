"""Helpers the HTTP benchmarks share: ports, readiness, wrk runs, cleanup, reports."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - local URL
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc), to report CPU cost per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_pids() -> list[int]:
    """Kafka, Redis and PostgreSQL (postmaster and backends) of the local stack, if it runs."""
    run = Path(os.environ.get("GRIM_RUN_DIR", Path(__file__).resolve().parent.parent / ".run"))
    pids = []
    for pidfile in (run / "kafka" / "kafka.pid", run / "redis" / "redis.pid",
                    run / "postgres" / "data" / "postmaster.pid"):
        try:
            pids.append(int(pidfile.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    if pids:  # PostgreSQL's work happens in its backends, children of the postmaster
        for proc in Path("/proc").iterdir():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == pids[-1]:
                pids.append(int(proc.name))
    return pids


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:  # a backend that ended meanwhile
            continue
    return total


def run_wrk(url: str, seconds: int, connections: int, script: str | None = None,
            pid: int | None = None, headers: tuple[str, ...] = ()) -> dict:
    """One wrk run against 127.0.0.1: req/s, p50/p99 in ms, non-2xx, CPU ms per request
    of the server (`pid`) and of the local stack's Kafka, Redis and PostgreSQL."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", script]
    stack = stack_pids()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    stack_before = _cpu_of(stack)
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    stack_cpu = _cpu_of(stack) - stack_before
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * _UNITS[u]
           for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"],
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "cpu_ms": 1000 * cpu / total if total else 0.0,
            "stack_ms": 1000 * stack_cpu / total if total else 0.0}


async def cleanup(database: str, namespace: str) -> None:
    """Drop the benchmark's database, Redis keys and namespaced topics."""
    import asyncpg
    from redis.asyncio import Redis

    from grim.settings import GrimSettings

    base = GrimSettings()
    conn = await asyncpg.connect(base.database_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await conn.close()
    redis = Redis.from_url(base.redis_url)
    async for key in redis.scan_iter(match=f"{namespace}*", count=1000):
        await redis.delete(key)
    await redis.aclose()
    await delete_topics(base.kafka_bootstrap, namespace)


async def delete_topics(bootstrap: str, namespace: str) -> None:
    """Delete every topic whose name starts with the benchmark's namespace."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """Terminate the benchmark's servers, then kill those that do not exit in 15 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def report(name: str, base: dict, candidate: dict, label: str) -> None:
    print(f"\n== {name}")
    print(f"{'':10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'cpu ms/req':>10}"
          f" {'stack ms/req':>12}")
    for row, r in (("baseline", base), (label, candidate)):
        print(f"{row:10} {r['rps']:10.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8d}"
              f" {r['cpu_ms']:10.2f} {r['stack_ms']:12.2f}")
    if "pause_ms" in candidate:
        print(f"{'':10} (pauses calibrated per server: baseline {base['pause_ms']} ms,"
              f" {label} {candidate['pause_ms']} ms)")
    print(f"{'ratio':10} {candidate['rps'] / base['rps']:10.2f} "
          f"{candidate['p50'] / base['p50']:8.2f} {candidate['p99'] / base['p99']:8.2f}")


def paced_wrk(url: str, rate: float, seconds: int, connections: int,
              script_for: Callable[[int | None], str | None], pid: int | None = None,
              headers: tuple[str, ...] = ()) -> dict:
    """A wrk run offering about `rate` req/s: each connection pauses between requests.

    wrk has no rate option, and a fixed pause gives `connections / (pause + latency)`
    req/s, so the pause is calibrated on the server under test: two short runs
    measure the latency at the current pause and correct it. `script_for(pause_ms)`
    returns a wrk Lua script whose `delay()` returns that pause. The result carries
    `pause_ms`; its `rps` shows the rate actually reached.
    """
    cycle_ms = 1000.0 * connections / rate
    pause = max(0, round(cycle_ms))
    for _ in range(2):
        probe = run_wrk(url, 2, connections, script_for(pause), headers=headers)
        latency_ms = max(0.0, 1000.0 * connections / max(probe["rps"], 1.0) - pause)
        pause = max(0, round(cycle_ms - latency_ms))
    result = run_wrk(url, seconds, connections, script_for(pause), pid, headers)
    return {**result, "pause_ms": pause}


def delay_lua(pause_ms: int | None) -> str:
    """The wrk Lua hook that pauses each connection between requests (empty for none)."""
    return f"function delay() return {pause_ms} end\n" if pause_ms else ""


def alternate(rounds: int, base: Callable[[], dict], candidate: Callable[[], dict],
              ) -> tuple[dict, dict]:
    """Run baseline and candidate in turn `rounds` times; each figure's median of each.

    On a shared 2-core machine the speed of the whole machine drifts between runs;
    alternating the two and taking medians keeps a drift from landing on one side.
    The per-round throughput ratios are printed so the spread is visible.
    """
    runs: list[tuple[dict, dict]] = [(base(), candidate()) for _ in range(max(1, rounds))]
    if len(runs) > 1:
        print("per-round ratios: " + ", ".join(f"{c['rps'] / b['rps']:.2f}" for b, c in runs))

    def median(results: list[dict]) -> dict:
        return {key: statistics.median(r[key] for r in results) for key in results[0]}

    return median([b for b, _ in runs]), median([c for _, c in runs])
