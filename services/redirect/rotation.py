"""Weighted bot rotation: a pure function of the pool's members and a sequence number.

The redirect takes the next number of an atomic per-pool counter (Redis INCR)
and maps it onto a fixed, smoothly interleaved schedule of the usable bots.
Any `total_weight` consecutive numbers give every bot exactly `weight` turns,
however many processes share the counter, so fairness is exact, not statistical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Candidate:
    bot_id: int
    username: str
    weight: int


@lru_cache(maxsize=1024)
def schedule(members: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Smooth weighted round robin (nginx's): indexes into `members` ((bot_id, weight) pairs).

    Smooth means heavy bots do not get long bursts: weights 5:1:1 give
    a a b a c a a rather than a a a a a b c.
    """
    total = sum(w for _, w in members)
    current = [0] * len(members)
    order: list[int] = []
    for _ in range(total):
        for i, (_, weight) in enumerate(members):
            current[i] += weight
        best = max(range(len(members)), key=lambda i: (current[i], -i))
        current[best] -= total
        order.append(best)
    return tuple(order)


def plan(candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """One full rotation: each candidate appears `weight` times, smoothly interleaved."""
    if not candidates:
        raise ValueError("no usable bot in the pool")
    return _plan(tuple(sorted(candidates, key=lambda c: c.bot_id)))


@lru_cache(maxsize=1024)
def _plan(ordered: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    return tuple(ordered[i] for i in schedule(tuple((c.bot_id, max(1, c.weight)) for c in ordered)))


def choose(candidates: Sequence[Candidate], sequence: int) -> Candidate:
    """The bot for the `sequence`-th click of a pool (any integer; wraps around)."""
    rotation = plan(candidates)
    return rotation[sequence % len(rotation)]
