"""`grim stack` for real: up, status, up again, down — on a private run dir and ports.

This never touches the shared stack other tests use (default run dir and ports): the
stack here lives under tmp_path and its ports are picked free at run time.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from grim.stack import Stack, StackConfig
from tests.support import private_stack_ports

pytestmark = pytest.mark.integration


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init (it holds no resources)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _processes_under(run_dir: Path) -> list[str]:
    """Live processes whose command line mentions the run dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or _gone(int(proc.name)):
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if str(run_dir) in args:
            found.append(f"{proc.name}: {args}")
    return found


async def _kafka_answers(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        topic = f"stack-test-{uuid.uuid4().hex[:8]}"
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()


async def _postgres_answers(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_user") == "grim"
        # Test sessions create a database each: role grim must be allowed to.
        scratch = f"stack_test_{uuid.uuid4().hex[:8]}"
        await conn.execute(f'CREATE DATABASE "{scratch}"')
        await conn.execute(f'DROP DATABASE "{scratch}"')
    finally:
        await conn.close()


def test_up_status_up_down(tmp_path: Path) -> None:
    kafka_port, postgres_port, redis_port = private_stack_ports()
    run_dir = tmp_path / "run"
    # An explicit mapping: GRIM_* URLs of the surrounding session must not leak in.
    cfg = StackConfig.from_env(
        {
            "GRIM_RUN_DIR": str(run_dir),
            "GRIM_STACK_KAFKA_PORT": str(kafka_port),
            "GRIM_STACK_POSTGRES_PORT": str(postgres_port),
            "GRIM_STACK_REDIS_PORT": str(redis_port),
            "GRIM_STACK_KAFKA_HEAP": "512m",
        }
    )
    messages: list[str] = []
    stack = Stack(cfg, echo=messages.append)
    try:
        started = stack.up()
        assert [(s.name, s.state) for s in started] == [
            ("kafka", "running"),
            ("postgres", "running"),
            ("redis", "running"),
        ], messages
        pids = {s.name: s.pid for s in started}
        assert all(pids.values())

        status = {s.name: s for s in stack.status()}
        assert {name: s.state for name, s in status.items()} == dict.fromkeys(pids, "running")
        assert {name: s.pid for name, s in status.items()} == pids
        assert status["kafka"].log_path == run_dir / "kafka" / "kafka.log"

        env = stack.env()
        assert env == {
            "GRIM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
            "GRIM_DATABASE_URL": f"postgresql://grim:grim@127.0.0.1:{postgres_port}/grim",
            "GRIM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
        asyncio.run(_kafka_answers(env["GRIM_KAFKA_BOOTSTRAP"]))
        asyncio.run(_postgres_answers(env["GRIM_DATABASE_URL"]))
        client = redis.Redis.from_url(env["GRIM_REDIS_URL"], socket_timeout=5)
        try:
            assert client.ping() is True
        finally:
            client.close()

        # A second `up` changes nothing and fetches nothing.
        messages.clear()
        again = stack.up()
        assert {s.name: (s.state, s.pid) for s in again} == {
            name: ("running", pid) for name, pid in pids.items()
        }
        assert not any("Maven" in m or "initdb" in m or "started" in m for m in messages), messages

        stack.down()
        assert all(_gone(pid) for pid in pids.values()), pids
        assert _processes_under(run_dir) == []
        assert not (run_dir / "kafka" / "kafka.pid").exists()
        assert not (run_dir / "redis" / "redis.pid").exists()
        assert [(s.name, s.state, s.pid) for s in stack.status()] == [
            ("kafka", "stopped", None),
            ("postgres", "stopped", None),
            ("redis", "stopped", None),
        ]
        stack.down()  # idempotent
    finally:
        # Never leave a private stack behind, whatever failed above.
        stack.down()
        assert _processes_under(run_dir) == []
