"""Helpers shared by integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns a truthy value; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        result = condition()
        last = await result if asyncio.iscoroutine(result) else result  # type: ignore[assignment]
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 20.0
) -> list[ConsumerRecord]:
    """Read a topic from the beginning until `expect` records arrived (or the deadline)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def private_stack_ports(low: int = 20000, high: int = 30000) -> tuple[int, int, int]:
    """Kafka (port and port+1), PostgreSQL and Redis ports for a private `grim stack`:
    all free, none a default, below the kernel's ephemeral range."""
    import random

    from grim.stack.config import DEFAULT_KAFKA_PORT, DEFAULT_POSTGRES_PORT, DEFAULT_REDIS_PORT

    defaults = {DEFAULT_KAFKA_PORT, DEFAULT_KAFKA_PORT + 1, DEFAULT_POSTGRES_PORT,
                DEFAULT_REDIS_PORT}
    rng = random.Random()
    while True:
        base = rng.randrange(low, high, 10)
        ports = [base, base + 1, base + 3, base + 5]
        if not defaults & set(ports) and all(_port_free(p) for p in ports):
            return base, base + 3, base + 5
