"""Real requests that prove a server answers: Kafka metadata, `select 1`, PING."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_coro(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, also when the caller already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wrap(factory))
    # asyncio.run refuses to nest; a helper thread gets its own loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _wrap(factory)).result()


async def _wrap(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        hosts.append((host.strip("[]") or "127.0.0.1", int(port)))
    return hosts


def tcp_connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        return


def ping_kafka(bootstrap: str, timeout: float) -> None:
    # A plain connect first: aiokafka logs every refused bootstrap at ERROR level,
    # which would flood the console while a broker is still starting.
    errors = []
    for host, port in split_bootstrap(bootstrap):
        try:
            tcp_connect(host, port, timeout)
            break
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc}")
    else:
        raise ConnectionError("; ".join(errors))
    run_coro(lambda: _kafka_metadata(bootstrap, timeout))


async def _kafka_metadata(bootstrap: str, timeout: float) -> None:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout)
        if not metadata.brokers():
            raise ConnectionError("metadata lists no broker yet")
    finally:
        await client.close()


def ping_postgres(url: str, timeout: float) -> None:
    run_coro(lambda: _select_one(url, timeout))


async def _select_one(url: str, timeout: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        if await conn.fetchval("select 1", timeout=timeout) != 1:
            raise ConnectionError("select 1 did not return 1")
    finally:
        await conn.close(timeout=timeout)


def ping_redis(url: str, timeout: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        if not client.ping():
            raise ConnectionError("PING was not answered with PONG")
    finally:
        client.close()
