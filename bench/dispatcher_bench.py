"""Dispatcher throughput against the fake Graph API, beside the fake's own ceiling.

Needs the local stack (`grim stack up`). Uses a private topic namespace and
random pixel ids in the configured database, and removes them afterwards.

    .venv/bin/python bench/dispatcher_bench.py --events 50000 --pixels 4

Prints events/s delivered (Kafka -> dispatcher -> fake Graph -> ledger), HTTP
requests per 1,000 events, and both as ratios: against the fake's ceiling
(prebuilt 1,000-event requests posted straight to it, same run) and against
peers that send one request per event. Also the CPU per event of the dispatcher
(this process) and of the fake Graph: on a shared machine they move much less
than throughput does, and they show what the machine's cores are spent on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import timedelta

import httpx
import orjson
import uvloop
from benchlib import cpu_seconds, delete_topics
from grim_dispatcher.bootstrap import run
from grim_dispatcher.hashing import build_user_data
from grim_dispatcher.settings import DispatcherSettings
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested, ConversionUserData

from grim.config.pixels import upsert_pixel
from grim.crypto import SecretBox
from grim.db import create_pool
from grim.kafka import EventPublisher, make_producer
from grim.migrate import migrate
from grim.sandbox.graph import free_port
from grim.topics_admin import create_topics


def conversion(pixel_id: str, i: int) -> ConversionRequested:
    token = uuid.uuid4().hex
    return ConversionRequested(
        event_name=("Purchase", "PageView", "InitiateCheckout", "ViewContent")[i % 4],
        event_id=f"bench_{pixel_id}_{i}", event_time=utcnow() - timedelta(minutes=1),
        pixel_id=pixel_id, tracking_token=token, producer="bench",
        event_source_url="https://grim.test/go/bench",
        user_data=ConversionUserData(
            client_ip_address="203.0.113.9", client_user_agent="Mozilla/5.0 (Android)",
            fbc=f"fb.1.1763800000000.IwAR{token[:12]}", fbp="fb.1.1763800000000.987654321",
            external_id=token, em=f"buyer{i}@example.com", ph="(11) 98765-4321",
        ),
        custom_data={"value": 19.9, "currency": "BRL", "order_id": f"o{i}"},
    )


async def fake_ceiling(url: str, events: int, concurrency: int) -> float:
    """Events/s the fake accepts when fed prebuilt 1,000-event requests."""
    sample = conversion("1", 0)
    event = {"event_name": "Purchase", "event_time": int(time.time()) - 60,
             "action_source": "website", "event_source_url": "https://grim.test/go/bench",
             "user_data": build_user_data(sample.user_data),
             "custom_data": {"value": 19.9, "currency": "BRL"}}
    body = orjson.dumps({"access_token": "t", "data": [
        {**event, "event_id": f"ceiling_{i}"} for i in range(1000)]})
    requests = max(1, events // 1000)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    async with httpx.AsyncClient(timeout=30) as client:
        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                r = await client.post(f"{url}/v21.0/999/events", content=body,
                                      headers={"Content-Type": "application/json"})
                r.raise_for_status()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests * 1000 / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    base = DispatcherSettings()
    namespace = f"bench{uuid.uuid4().hex[:6]}."
    port = free_port()
    # Its own process (its own core), as Meta's servers would be.
    fake = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "grim.sandbox.graph", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    pool = await create_pool(base.database_url, max_size=4)
    pixels = [str(random.randint(10**14, 10**15 - 1)) for _ in range(args.pixels)]
    try:
        await migrate(base.database_url)
        await create_topics(base.kafka_bootstrap, namespace)
        box = SecretBox(base.secret_key.get_secret_value())
        for p in pixels:
            await upsert_pixel(pool, box, pixel_id=p, access_token="bench-token")
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    (await client.get(f"{url}/healthz")).raise_for_status()
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)

        ceiling = await fake_ceiling(url, args.events, args.concurrency)
        async with httpx.AsyncClient() as client:
            await client.post(f"{url}/_sandbox/reset")

        producer = make_producer(base, "bench", linger_ms=20, max_batch_size=1 << 20)
        await producer.start()
        try:
            publisher = EventPublisher(producer, namespace)
            # Built per slice and dropped: kept alive, every model would sit in this process's
            # heap during the run and slow down the dispatcher's full garbage collections.
            for start in range(0, args.events, 5000):
                stop = min(start + 5000, args.events)
                await publisher.publish_many([conversion(pixels[i % len(pixels)], i)
                                              for i in range(start, stop)])
        finally:
            await producer.stop()

        settings = base.model_copy(update={
            "namespace": namespace, "meta_graph_base": url, "dispatcher_group_name": "bench",
            "dispatcher_concurrency": args.concurrency,
        })
        stop = asyncio.Event()
        # CPU of this process while the dispatcher runs (the fake Graph is another process).
        cpu_started = time.process_time()
        fake_cpu_started = cpu_seconds(fake.pid)
        started = time.perf_counter()
        task = asyncio.create_task(run(settings, serve_http=False, stop=stop,
                                       handle_signals=False))
        first_at, first_done = None, 0
        while True:
            done = await pool.fetchval(
                "SELECT count(*) FROM dispatcher.ledger WHERE pixel_id = ANY($1::text[])", pixels)
            if done and first_at is None:
                first_at, first_done = time.perf_counter(), done
            if done >= args.events or task.done():
                break
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        cpu = time.process_time() - cpu_started
        fake_cpu_now = cpu_seconds(fake.pid)
        elapsed = finished - started
        steady = (args.events - first_done) / max(1e-9, finished - (first_at or started))
        stop.set()
        await task
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{url}/_sandbox/stats")).json()
        requests = stats["requests"].get("total", 0)
        rate = args.events / elapsed
        per_1000 = requests / args.events * 1000
        print(f"events: {args.events} over {args.pixels} pixel(s); concurrency {args.concurrency}")
        print(f"fake Graph ceiling:        {ceiling:12,.0f} events/s")
        print(f"dispatcher, whole run:     {rate:12,.0f} events/s "
              f"(ratio to ceiling {rate / ceiling:.2f}; includes joining the group)")
        print(f"dispatcher, steady state:  {steady:12,.0f} events/s "
              f"(ratio to ceiling {steady / ceiling:.2f}; from the first ledger row)")
        print(f"dispatcher CPU per event:  {cpu / args.events * 1e6:12.1f} us "
              f"(whole run, startup included; the fake Graph, Kafka and Postgres are "
              f"other processes)")
        fake_cpu = (fake_cpu_now - fake_cpu_started) / args.events * 1e6
        print(f"fake Graph CPU per event:  {fake_cpu:12.1f} us "
              f"(it shares this machine's cores with the dispatcher during the run)")
        print(f"HTTP requests / 1,000 ev:  {per_1000:12.2f} "
              f"(one per event would be 1,000: ratio {per_1000 / 1000:.4f})")
        print(f"accepted unique / total:   {stats['unique_events']} / {stats['accepted_events']}")
    finally:
        fake.terminate()
        await asyncio.wait_for(fake.wait(), 10)
        await pool.execute("DELETE FROM dispatcher.ledger WHERE pixel_id = ANY($1::text[])",
                           pixels)
        await pool.execute("DELETE FROM config.pixels WHERE pixel_id = ANY($1::text[])", pixels)
        await pool.close()
        await delete_topics(base.kafka_bootstrap, namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--pixels", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # The event loop `grim dispatcher run` uses.
    uvloop.run(main(parser.parse_args()))
