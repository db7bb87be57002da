"""End to end: paid webhook -> Purchase accepted by the fake Graph, at a steady load.

    .venv/bin/python bench/e2e_bench.py [--payments 200] [--rate 10]

Uses the running local stack with a scratch database and topic namespace (removed
at the end), starts every service as a subprocess (grim.demo.system), plays funnels
up to the PIX charge through the public HTTP surfaces, then pays them at a steady
rate through the sandbox gateway. Latency of one sale = from the simulate-payment
call (which sends the signed webhook) until the fake Graph lists its Purchase;
the Graph is polled every 20 ms, so figures carry up to that much extra.
Baseline in the same run: the webhook round trip alone (the simulate-payment call).
Target (issue 9): p99 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from grim.demo.system import System, private_stack_space, running_system
from grim.settings import GrimSettings


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    async with private_stack_space(GrimSettings(), "bench") as base:
        scratch = Path(tempfile.mkdtemp(prefix="grim-e2e-bench-"))
        try:
            async with running_system(base, scratch / ".run") as system:
                sent, seen, webhook = await measure(system, args.payments, args.rate)
        finally:
            if args.keep:
                print(f"service logs kept in {scratch}/.run/services/")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    report(sent, seen, webhook, args.rate)


async def measure(system: System, payments: int, rate: float
                  ) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Funnels up to the PIX charge, then pay them `rate` per second; when each was paid,
    when its Purchase showed up at the fake Graph, and each webhook round trip."""
    truth = await system.simulate(payments, seed=1, rate=40.0, only="unpaid",
                                  wait_timeout=120.0)
    charges = [j.payment_id for j in truth.journeys if j.payment_id]
    graph = system.settings.graph_url
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    webhook: list[float] = []

    async with httpx.AsyncClient(timeout=30) as http:
        async def pay(payment_id: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            sent[payment_id] = time.monotonic()
            response = await http.post(
                f"{system.settings.sandbox_url}/v1/charges/{payment_id}/simulate-payment",
                json={"payer": {"name": "Bench Buyer"}})
            response.raise_for_status()
            webhook.append(time.monotonic() - sent[payment_id])

        async def watch() -> None:
            deadline = time.monotonic() + len(charges) / rate + 60
            while len(seen) < len(charges) and time.monotonic() < deadline:
                events = (await http.get(f"{graph}/_sandbox/events",
                                         params={"limit": 100000})).json()["events"]
                now = time.monotonic()
                for event in events:
                    if event["event_name"] == "Purchase":
                        seen.setdefault(event["custom_data"]["order_id"], now)
                await asyncio.sleep(0.02)

        start = time.monotonic() + 0.5
        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(pay(pid, start + i / rate) for i, pid in enumerate(charges)))
        await watcher
    return sent, seen, webhook


def report(sent: dict[str, float], seen: dict[str, float], webhook: list[float],
           rate: float) -> None:
    latencies = [seen[p] - t for p, t in sent.items() if p in seen]
    print(f"payments: {len(sent)} at {rate:g}/s; Purchases seen: {len(latencies)}; "
          f"missing: {len(sent) - len(latencies)}")
    if not latencies:
        return
    p50, p99 = _pct(latencies, 0.5), _pct(latencies, 0.99)
    w50, w99 = _pct(webhook, 0.5), _pct(webhook, 0.99)
    print(f"webhook round trip (baseline): p50 {w50 * 1000:8.1f} ms  p99 {w99 * 1000:8.1f} ms")
    print(f"paid -> Purchase accepted:     p50 {p50 * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms"
          f"  mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"ratio e2e/webhook p50: {p50 / w50:.1f}x; p99 target < 1000 ms: "
          f"{'met' if p99 < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="payments per second")
    parser.add_argument("--keep", action="store_true", help="keep the services' logs")
    asyncio.run(main(parser.parse_args()))
