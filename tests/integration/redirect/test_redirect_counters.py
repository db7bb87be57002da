"""Rotation counters on the real Redis: concurrent clicks share calls, counts stay exact."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter

from redis.asyncio import Redis

from grim_redirect import redis_counters
from grim_redirect.metrics import ROTATION_BATCH
from grim_redirect.redis_counters import RedisCounters
from grim_redirect.rotation import Candidate, plan


def _batches() -> tuple[float, float]:
    """(calls, clicks) observed so far by the rotation-batch histogram."""
    samples = {s.name: s.value for s in ROTATION_BATCH.collect()[0].samples}
    return (samples["grim_redirect_rotation_batch_clicks_count"],
            samples["grim_redirect_rotation_batch_clicks_sum"])


def _pool_id() -> int:
    return uuid.uuid4().int % 1_000_000_000


async def test_concurrent_clicks_share_calls_and_follow_the_schedule(redis_client, grim_settings):
    counters = RedisCounters(redis_client, grim_settings)
    candidates = [Candidate(11, "a_bot", 1), Candidate(12, "b_bot", 2), Candidate(13, "c_bot", 3)]
    pool = _pool_id()
    calls_before, clicks_before = _batches()

    picks = await asyncio.gather(*(counters.choose(pool, candidates) for _ in range(600)))

    calls, clicks = _batches()
    assert clicks - clicks_before == 600
    assert calls - calls_before < 600  # clicks queued behind a call went together
    assert Counter(p.bot_id for p in picks) == {11: 100, 12: 200, 13: 300}
    assert await counters.selections(pool) == {11: 100, 12: 200, 13: 300}
    assert int(await redis_client.get(counters.sequence_key(pool))) == 600
    # Numbers were handed out in order: the picks follow the smooth schedule from 1.
    schedule = [c.bot_id for c in plan(candidates)]
    assert [p.bot_id for p in picks] == [schedule[n % 6] for n in range(1, 601)]


async def test_long_schedules_take_the_pipelined_path(redis_client, grim_settings):
    counters = RedisCounters(redis_client, grim_settings)
    # Coprime weights: a schedule of 301 slots, longer than one script call may carry.
    candidates = [Candidate(21, "a_bot", 150), Candidate(22, "b_bot", 151)]
    assert sum(c.weight for c in candidates) > redis_counters.MAX_SCRIPT_SCHEDULE
    pool = _pool_id()

    picks = await asyncio.gather(*(counters.choose(pool, candidates) for _ in range(301)))

    assert Counter(p.bot_id for p in picks) == {21: 150, 22: 151}
    assert await counters.selections(pool) == {21: 150, 22: 151}


async def test_redis_down_still_chooses_a_bot_for_everyone(grim_settings):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    counters = RedisCounters(dead, grim_settings, timeout=0.5)
    candidates = [Candidate(31, "a_bot", 1), Candidate(32, "b_bot", 1)]
    try:
        picks = await asyncio.gather(*(counters.choose(_pool_id(), candidates)
                                       for _ in range(20)))
    finally:
        await dead.aclose()
    assert len(picks) == 20 and {p.bot_id for p in picks} <= {31, 32}


async def test_go_fast_path_is_counted_by_route_and_others_fall_through(redirect_settings, seed):
    from .conftest import running

    pool, _ = await seed.pool(1)
    async with running(redirect_settings) as (_, client):
        before = (await client.get("/metrics")).text
        ok = await client.get(f"/go/{pool.slug}?fbclid=IwAR-x_1",
                              headers={"user-agent": "Mozilla/5.0"})
        head = await client.head(f"/go/{pool.slug}", headers={"user-agent": "Mozilla/5.0"})
        nested = await client.get(f"/go/{pool.slug}/extra")
        post = await client.post(f"/go/{pool.slug}")
        after = (await client.get("/metrics")).text
        spec = (await client.get("/openapi.json")).json()
    assert ok.status_code == 200 and "fbq('track', 'PageView'" in ok.text
    assert re.fullmatch(r"_fbc=fb\.1\.\d{13}\.IwAR-x_1; Max-Age=7776000; Path=/; SameSite=lax;"
                        r" Secure", ok.headers["set-cookie"])
    assert head.status_code == 200
    assert nested.status_code == 404 and nested.json()["error"] == "not_found"
    assert post.status_code == 405
    assert set(spec["paths"]["/go/{slug}"]) == {"get", "head"}

    def served(text: str, method: str) -> float:
        line = (f'grim_redirect_http_requests_total{{method="{method}",route="/go/{{slug}}",'
                'status="200"}')
        values = [float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(line)]
        return values[0] if values else 0.0

    assert served(after, "GET") - served(before, "GET") == 1
    assert served(after, "HEAD") - served(before, "HEAD") == 1
