"""Rotation counters in Redis: atomic under any number of concurrent requests and processes.

Clicks that arrive together for the same pool share one round trip: while a
call to Redis is in flight, newer requests queue, and the next call takes the
whole queue. A Lua script reserves that many consecutive numbers of the pool's
sequence (INCRBY), maps each onto the rotation schedule passed as arguments and
counts the chosen bots (HINCRBY), atomically. Under load this turns hundreds
of Redis calls per second into a few dozen without making any counter
approximate or late; a lone click still costs exactly one call. Schedules too
long to pass per call (large, coprime weights) reserve numbers with INCRBY and
count with one pipelined HINCRBY per bot.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache, reduce
from math import gcd

from redis.asyncio import Redis
from redis.exceptions import RedisError

from grim.settings import GrimSettings

from . import rotation
from .metrics import ROTATION_BATCH

log = logging.getLogger(__name__)

MAX_SCRIPT_SCHEDULE = 256
# ARGV[1] = how many picks; ARGV[2..] = the schedule (bot ids). Returns the picks in order.
_PICK = """
local k = tonumber(ARGV[1])
local size = #ARGV - 1
local last = redis.call('INCRBY', KEYS[1], k)
local picks, counts = {}, {}
for n = last - k + 1, last do
  local bot = ARGV[(n % size) + 2]
  picks[#picks + 1] = bot
  counts[bot] = (counts[bot] or 0) + 1
end
for bot, c in pairs(counts) do
  redis.call('HINCRBY', KEYS[2], bot, c)
end
return picks
"""
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

Plan = tuple[int, ...]


def reduced(candidates: Sequence[rotation.Candidate]) -> list[rotation.Candidate]:
    """Same proportions, shortest schedule: divide the weights by their gcd."""
    divisor = reduce(gcd, (max(1, c.weight) for c in candidates))
    return [rotation.Candidate(c.bot_id, c.username, max(1, c.weight) // divisor)
            for c in candidates]


@lru_cache(maxsize=1024)
def _prepared(candidates: tuple[rotation.Candidate, ...]) -> tuple[
    list[rotation.Candidate], dict[int, rotation.Candidate], Plan
]:
    members = reduced(candidates)
    return (members, {c.bot_id: c for c in candidates},
            tuple(c.bot_id for c in rotation.plan(members)))


class RedisCounters:
    def __init__(self, redis: Redis, settings: GrimSettings, timeout: float = 2.0) -> None:
        self.redis = redis
        self.settings = settings
        self.timeout = timeout
        self._pick = redis.register_script(_PICK)
        # (pool, schedule) -> waiters queued while a call for that key is in flight.
        self._queues: dict[tuple[int, Plan], list[asyncio.Future[int]]] = {}
        self._busy: set[tuple[int, Plan]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def sequence_key(self, pool_id: int) -> str:
        return self.settings.redis_key("redirect", "pool", pool_id, "seq")

    def selections_key(self, pool_id: int) -> str:
        return self.settings.redis_key("redirect", "pool", pool_id, "selections")

    async def choose(
        self, pool_id: int, candidates: Sequence[rotation.Candidate]
    ) -> rotation.Candidate:
        """The next bot of the pool's rotation, counted; random if Redis is unreachable."""
        members, by_id, plan = _prepared(tuple(candidates))
        key = (pool_id, plan)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append(waiter)
        if key not in self._busy:
            self._busy.add(key)
            task = asyncio.get_running_loop().create_task(self._drain(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        chosen = await waiter
        if chosen < 0:
            # Never block a visitor on the counter; the click is still recorded.
            return rotation.choose(members, random.randrange(1 << 30))
        return by_id[chosen]

    async def _drain(self, key: tuple[int, Plan]) -> None:
        """Serve the key's queue, one Redis call per batch, until nobody waits."""
        waiters: list[asyncio.Future[int]] = []
        try:
            while waiters := self._queues.pop(key, []):
                ROTATION_BATCH.observe(len(waiters))
                picks = await self._reserve(key[0], key[1], len(waiters))
                for waiter, bot_id in zip(waiters, picks, strict=True):
                    if not waiter.done():
                        waiter.set_result(bot_id)
        finally:
            # Only reached with waiters left if this task was cancelled or failed:
            # they get a random bot rather than hanging.
            self._busy.discard(key)
            for waiter in waiters + self._queues.pop(key, []):
                if not waiter.done():
                    waiter.set_result(-1)

    async def _reserve(self, pool_id: int, plan: Plan, count: int) -> list[int]:
        """`count` consecutive picks of the pool's rotation, or -1s if Redis failed."""
        try:
            async with asyncio.timeout(self.timeout):
                if len(plan) <= MAX_SCRIPT_SCHEDULE:
                    keys = [self.sequence_key(pool_id), self.selections_key(pool_id)]
                    return [int(b) for b in await self._pick(keys=keys, args=[count, *plan])]
                last = int(await self.redis.incrby(self.sequence_key(pool_id), count))
                picks = [plan[n % len(plan)] for n in range(last - count + 1, last + 1)]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for bot_id, n in Counter(picks).items():
                        pipe.hincrby(self.selections_key(pool_id), str(bot_id), n)
                    await pipe.execute()
                return picks
        except _ERRORS as exc:
            log.warning("redis unavailable for rotation (%s: %s); choosing at random",
                        type(exc).__name__, exc)
            return [-1] * count

    async def selections(self, pool_id: int) -> dict[int, int]:
        raw = await self.redis.hgetall(self.selections_key(pool_id))
        return {int(k): int(v) for k, v in raw.items()}
