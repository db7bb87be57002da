"""The worker against real Kafka and Postgres and the strict fake Graph API."""

from __future__ import annotations

import orjson
from grim_dispatcher.dlq_admin import retry_entries
from prometheus_client import REGISTRY

from grim.config.pixels import get_pixel
from grim.kafka import EventPublisher, make_producer
from tests.support import read_topic, wait_for

from .conftest import (
    add_pixel,
    conversion,
    dead_letters,
    dispatcher_running,
    ledger_count,
    make_settings,
    new_pixel_id,
    publish,
)


async def test_10000_conversions_under_30_percent_faults_are_accepted_exactly_once(
    grim_settings, dispatcher_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    fake, _ = fake_graph
    fake.fault_rate = 0.3
    fake.fault_kinds = ("http500", "http503", "timeout", "throttle17", "throttle613",
                        "throttle4", "transient2")
    pixels = [new_pixel_id() for _ in range(3)]
    for p in pixels:
        await add_pixel(pg_pool, grim_settings, p)
    names = ("Purchase", "PageView", "InitiateCheckout", "ViewContent")
    convs = [conversion(pixels[i % 3], i, names[i % 4]) for i in range(10_000)]
    # Smaller requests than production's 1,000 so the fault mix hits many of them.
    settings = dispatcher_settings.model_copy(update={"dispatcher_batch_max": 250})
    await publish(publisher, namespace, convs)
    async with dispatcher_running(settings):
        async def all_in() -> bool:
            return await ledger_count(pg_pool, pixels) >= 10_000
        await wait_for(all_in, timeout=150, interval=0.5, message="10,000 ledger rows")
    counts = fake.accepted_counts()
    ours = {k: n for k, n in counts.items() if k[0] in pixels}
    assert len(ours) == 10_000
    assert set(ours.values()) == {1}, "an event was accepted twice"
    assert {k[2] for k in ours} == {c.event_id for c in convs}
    assert await dead_letters(pg_pool, pixels) == []
    faults = sum(n for k, n in fake.requests.items() if k.startswith("fault:"))
    assert faults > 10, fake.requests
    # Purchase events stay website events with hashed customer data.
    sample = next(e for p, e in fake.accepted if p in pixels and e["event_name"] == "Purchase")
    assert sample["action_source"] == "website" and len(sample["user_data"]["em"]) == 64


async def test_one_malformed_event_in_1000_is_isolated_and_a_replay_sends_nothing(
    grim_settings, dispatcher_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    fake, _ = fake_graph
    pixel = new_pixel_id()
    await add_pixel(pg_pool, grim_settings, pixel)
    convs = [conversion(pixel, i) for i in range(1000)]
    bad = convs[613]
    convs[613] = bad.model_copy(update={"user_data": bad.user_data.model_copy(
        update={"fbc": "fbclid=IwAR-not-a-cookie"})})
    await publish(publisher, namespace, convs)
    async with dispatcher_running(dispatcher_settings):
        async def decided() -> bool:
            return (await ledger_count(pg_pool, [pixel]) == 999
                    and len(await dead_letters(pg_pool, [pixel])) == 1)
        await wait_for(decided, timeout=60, interval=0.2, message="999 accepted + 1 parked")
    assert len(fake.accepted_counts(pixel)) == 999
    assert bad.event_id not in {e["event_id"] for e in fake.events(pixel)}
    [parked] = await dead_letters(pg_pool, [pixel])
    assert parked["event_id"] == bad.event_id and parked["subcode"] == 2804001
    assert "fbc" in parked["reason"] and parked["kind"] == "invalid_events"
    records = await read_topic(grim_settings.kafka_bootstrap, f"{namespace}grim.capi-dlq.v1",
                               expect=1)
    entry = orjson.loads(records[0].value)
    assert entry["event_id"] == bad.event_id and entry["code"] == 100
    assert entry["subcode"] == 2804001 and entry["fbtrace_id"] and entry["reason"]
    assert entry["conversion"]["pixel_id"] == pixel

    # Replay: a new consumer group reads the topic from the start.
    requests_before = fake.requests["total"]
    ledger_dedup = REGISTRY.get_sample_value("grim_dispatcher_deduplicated_total",
                                             {"source": "ledger"}) or 0
    replay = dispatcher_settings.model_copy(update={"dispatcher_group_name": "replay"})
    async with dispatcher_running(replay):
        async def replayed() -> bool:
            value = REGISTRY.get_sample_value("grim_dispatcher_deduplicated_total",
                                              {"source": "ledger"}) or 0
            return value - ledger_dedup >= 999
        await wait_for(replayed, timeout=30, message="the replay to skip 999 accepted events")
    assert fake.requests["total"] == requests_before, "a replay sent something"


async def test_refused_token_flags_the_pixel_and_dlq_retry_resends_after_the_fix(
    grim_settings, dispatcher_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    fake, _ = fake_graph
    pixel = new_pixel_id()
    fake.tokens[pixel] = "new-token"
    await add_pixel(pg_pool, grim_settings, pixel, token="expired-token")
    convs = [conversion(pixel, i) for i in range(5)]
    await publish(publisher, namespace, convs)
    async with dispatcher_running(dispatcher_settings):
        async def parked() -> bool:
            return len(await dead_letters(pg_pool, [pixel])) == 5
        await wait_for(parked, timeout=30, message="5 parked")
        assert {d["kind"] for d in await dead_letters(pg_pool, [pixel])} == {"invalid_token"}
        flagged = await get_pixel(pg_pool, pixel)
        assert flagged is not None and flagged.flagged_reason
        assert fake.requests["token_refused"] == 1  # one request, not one per event

        # The operator stores the new token (which clears the flag) and releases the DLQ.
        await add_pixel(pg_pool, grim_settings, pixel, token="new-token")
        producer = make_producer(grim_settings, "tests-dlq")
        await producer.start()
        try:
            released = await retry_entries(pg_pool, EventPublisher(producer, namespace),
                                           pixel_id=pixel)
        finally:
            await producer.stop()
        assert released == 5

        async def delivered() -> bool:
            return await ledger_count(pg_pool, [pixel]) == 5
        await wait_for(delivered, timeout=30, message="5 accepted after the fix")
    assert len(fake.accepted_counts(pixel)) == 5
    assert all(d["retried_at"] for d in await dead_letters(pg_pool, [pixel]))


async def test_exhausted_in_process_retries_go_through_the_retry_topic(
    grim_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    fake, url = fake_graph
    settings = make_settings(grim_settings, namespace, url, dispatcher_attempts=2)
    pixel = new_pixel_id()
    await add_pixel(pg_pool, grim_settings, pixel)
    fake.script[:] = ["http500", "throttle17"]  # both in-process attempts fail
    await publish(publisher, namespace, [conversion(pixel, 1)])
    async with dispatcher_running(settings):
        async def delivered() -> bool:
            return await ledger_count(pg_pool, [pixel]) == 1
        await wait_for(delivered, timeout=30, message="accepted after the retry topic")
    retried = await read_topic(grim_settings.kafka_bootstrap, f"{namespace}grim.capi-retry.v1",
                               expect=1)
    assert len(retried) == 1
    assert dict(retried[0].headers)["attempt"] == b"1"
    assert len(fake.accepted_counts(pixel)) == 1


async def test_too_old_and_unknown_pixel_are_parked_without_a_request(
    grim_settings, dispatcher_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    from datetime import timedelta

    from grim_schemas.base import utcnow

    fake, _ = fake_graph
    pixel, unknown = new_pixel_id(), new_pixel_id()
    await add_pixel(pg_pool, grim_settings, pixel)
    old = conversion(pixel, 1, event_time=utcnow() - timedelta(days=8))
    await publish(publisher, namespace, [old, conversion(unknown, 2)])
    async with dispatcher_running(dispatcher_settings):
        async def parked() -> bool:
            return len(await dead_letters(pg_pool, [pixel, unknown])) == 2
        await wait_for(parked, timeout=30, message="2 parked")
    kinds = {d["pixel_id"]: d for d in await dead_letters(pg_pool, [pixel, unknown])}
    assert kinds[pixel]["kind"] == "too_old" and "too old" in kinds[pixel]["reason"]
    assert kinds[unknown]["kind"] == "unknown_pixel"
    assert fake.requests["total"] == 0


async def test_ops_endpoints_of_the_worker(grim_settings, dispatcher_settings) -> None:
    import asyncio

    import httpx
    from grim_dispatcher.bootstrap import run

    from grim.sandbox.graph import free_port

    port = free_port()
    settings = dispatcher_settings.model_copy(update={"dispatcher_port": port})
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop=stop, handle_signals=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async def up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False
            await wait_for(up, timeout=30, message="the ops server")
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"kafka": "ok", "postgres": "ok"}
            metrics = (await client.get("/metrics")).text
            for name in ("grim_dispatcher_oldest_unsent_age_seconds",
                         "grim_dispatcher_dlq_size_events",
                         "grim_dispatcher_graph_request_duration_seconds"):
                assert name in metrics
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_long_retry_wait_does_not_hold_back_a_due_retry_behind_it(
    grim_settings, dispatcher_settings, namespace, fake_graph, pg_pool, publisher
) -> None:
    import time

    from grim_dispatcher import dlq
    from grim_schemas import encode

    fake, _ = fake_graph
    slow, quick = new_pixel_id(), new_pixel_id()
    for p in (slow, quick):
        await add_pixel(pg_pool, grim_settings, p)
    topic = f"{namespace}grim.capi-retry.v1"
    now_ms = int(time.time() * 1000)
    # Same key, same partition: the one due in an hour comes first.
    for pixel, delay in ((slow, 3600.0), (quick, 0.0)):
        await publisher.producer.send_and_wait(
            topic, encode(conversion(pixel, 1)), key=b"same",
            headers=dlq.retry_headers(1, delay, now_ms=now_ms))
    async with dispatcher_running(dispatcher_settings):
        async def delivered() -> bool:
            return await ledger_count(pg_pool, [quick]) == 1
        await wait_for(delivered, timeout=30, message="the due retry behind a waiting one")
        # The waiting record moved to the partition's tail instead of blocking it.
        records = await read_topic(grim_settings.kafka_bootstrap, topic, expect=3)
        assert len(records) == 3
    assert await ledger_count(pg_pool, [slow]) == 0
    assert fake.events(slow) == []
