"""Rotation counters in Redis: atomic under any number of concurrent requests and processes.

One round trip per click: a Lua script takes the pool's next number (INCR),
maps it onto the rotation schedule passed as arguments and counts the chosen
bot (HINCRBY), atomically. Schedules too long to pass per call (large, coprime
weights) fall back to INCR, then HINCRBY.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from functools import lru_cache, reduce
from math import gcd

from redis.asyncio import Redis
from redis.exceptions import RedisError

from grim.settings import GrimSettings

from . import rotation

log = logging.getLogger(__name__)

MAX_SCRIPT_SCHEDULE = 256
_PICK = """
local n = redis.call('INCR', KEYS[1])
local bot = ARGV[(n % #ARGV) + 1]
redis.call('HINCRBY', KEYS[2], bot, 1)
return bot
"""
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def reduced(candidates: Sequence[rotation.Candidate]) -> list[rotation.Candidate]:
    """Same proportions, shortest schedule: divide the weights by their gcd."""
    divisor = reduce(gcd, (max(1, c.weight) for c in candidates))
    return [rotation.Candidate(c.bot_id, c.username, max(1, c.weight) // divisor)
            for c in candidates]


@lru_cache(maxsize=1024)
def _prepared(candidates: tuple[rotation.Candidate, ...]) -> tuple[
    list[rotation.Candidate], dict[int, rotation.Candidate], list[int]
]:
    members = reduced(candidates)
    return members, {c.bot_id: c for c in candidates}, [c.bot_id for c in rotation.plan(members)]


class RedisCounters:
    def __init__(self, redis: Redis, settings: GrimSettings, timeout: float = 2.0) -> None:
        self.redis = redis
        self.settings = settings
        self.timeout = timeout
        self._pick = redis.register_script(_PICK)

    def sequence_key(self, pool_id: int) -> str:
        return self.settings.redis_key("redirect", "pool", pool_id, "seq")

    def selections_key(self, pool_id: int) -> str:
        return self.settings.redis_key("redirect", "pool", pool_id, "selections")

    async def choose(
        self, pool_id: int, candidates: Sequence[rotation.Candidate]
    ) -> rotation.Candidate:
        """The next bot of the pool's rotation, counted; random if Redis is unreachable."""
        members, by_id, plan = _prepared(tuple(candidates))
        try:
            async with asyncio.timeout(self.timeout):
                if len(plan) <= MAX_SCRIPT_SCHEDULE:
                    keys = [self.sequence_key(pool_id), self.selections_key(pool_id)]
                    chosen = int(await self._pick(keys=keys, args=plan))
                    return by_id[chosen]
                sequence = int(await self.redis.incr(self.sequence_key(pool_id)))
                bot = by_id[plan[sequence % len(plan)]]
                await self.redis.hincrby(self.selections_key(pool_id), str(bot.bot_id), 1)
                return bot
        except _ERRORS as exc:
            # Never block a visitor on the counter; the click is still recorded.
            log.warning("redis unavailable for rotation (%s: %s); choosing at random",
                        type(exc).__name__, exc)
            return rotation.choose(members, random.randrange(1 << 30))

    async def selections(self, pool_id: int) -> dict[int, int]:
        raw = await self.redis.hgetall(self.selections_key(pool_id))
        return {int(k): int(v) for k, v in raw.items()}
