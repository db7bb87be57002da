"""Readiness probes for the connections a service holds."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis


def kafka_check(producer: AIOKafkaProducer):  # type: ignore[no-untyped-def]
    async def check() -> None:
        await producer.client.fetch_all_metadata()

    return check


def postgres_check(pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    async def check() -> None:
        await pool.fetchval("SELECT 1")

    return check


def redis_check(redis: Redis):  # type: ignore[no-untyped-def]
    async def check() -> None:
        await redis.ping()

    return check
