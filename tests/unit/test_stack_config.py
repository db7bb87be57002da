"""Pure pieces of `grim stack`: configuration, rendered configs, URLs, pid handling."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from grim.stack import Stack, StackConfig, StackError, probes, procs
from grim.stack.config import find_repo_root
from grim.stack.kafka import render_server_properties
from grim.stack.pgtools import server_options
from grim.stack.redis import server_args

REPO_ROOT = Path(__file__).resolve().parents[2]


def _props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_defaults_from_empty_environment() -> None:
    cfg = StackConfig.from_env({})
    assert cfg.run_dir == REPO_ROOT / ".run"
    assert cfg.repo_root == REPO_ROOT
    assert (cfg.kafka_port, cfg.kafka_controller_port) == (19092, 19093)
    assert (cfg.postgres_port, cfg.redis_port) == (15432, 16379)
    assert (cfg.kafka_version, cfg.kafka_heap) == ("4.2.0", "768m")
    assert (cfg.external_kafka, cfg.external_database_url, cfg.external_redis_url) == (
        None,
        None,
        None,
    )
    assert cfg.kafka_pom == REPO_ROOT / "deploy" / "kafka" / "pom.xml"
    assert cfg.kafka_pom.is_file() and cfg.kafka_log4j_config.is_file()


def test_overrides_from_environment(tmp_path: Path) -> None:
    cfg = StackConfig.from_env(
        {
            "GRIM_RUN_DIR": str(tmp_path / "run"),
            "GRIM_STACK_KAFKA_PORT": "29092",
            "GRIM_STACK_POSTGRES_PORT": "25432",
            "GRIM_STACK_REDIS_PORT": " 26379 ",
            "GRIM_STACK_KAFKA_VERSION": "4.1.1",
            "GRIM_STACK_KAFKA_HEAP": "1g",
        }
    )
    assert cfg.run_dir == tmp_path / "run"
    assert (cfg.kafka_port, cfg.postgres_port, cfg.redis_port) == (29092, 25432, 26379)
    assert (cfg.kafka_version, cfg.kafka_heap) == ("4.1.1", "1g")
    assert cfg.kafka_dir == tmp_path / "run" / "kafka"


def test_relative_run_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert StackConfig.from_env({"GRIM_RUN_DIR": "here"}).run_dir == tmp_path / "here"


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"GRIM_STACK_KAFKA_PORT": "kafka"}, "GRIM_STACK_KAFKA_PORT"),
        ({"GRIM_STACK_KAFKA_PORT": "65535"}, "GRIM_STACK_KAFKA_PORT"),  # controller needs +1
        ({"GRIM_STACK_REDIS_PORT": "0"}, "GRIM_STACK_REDIS_PORT"),
        ({"GRIM_STACK_POSTGRES_PORT": "19093"}, "overlap"),  # the Kafka controller port
        ({"GRIM_STACK_KAFKA_HEAP": "lots"}, "GRIM_STACK_KAFKA_HEAP"),
        ({"GRIM_STACK_KAFKA_VERSION": "latest"}, "GRIM_STACK_KAFKA_VERSION"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(StackError, match=complaint):
        StackConfig.from_env(env)


def test_local_urls() -> None:
    stack = Stack(StackConfig.from_env({}))
    assert stack.env() == {
        "GRIM_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
        "GRIM_DATABASE_URL": "postgresql://grim:grim@127.0.0.1:15432/grim",
        "GRIM_REDIS_URL": "redis://127.0.0.1:16379/0",
    }
    other = Stack(StackConfig.from_env({"GRIM_STACK_POSTGRES_PORT": "5544"}))
    assert other.env()["GRIM_DATABASE_URL"] == "postgresql://grim:grim@127.0.0.1:5544/grim"
    assert other.postgres.address == "postgresql://grim:***@127.0.0.1:5544/grim"


def test_external_servers_are_used_as_given() -> None:
    env = {
        "GRIM_KAFKA_BOOTSTRAP": "broker-a:9092,broker-b:9092",
        "GRIM_DATABASE_URL": "postgresql://app:secret@db.internal:5432/grim",
        "GRIM_REDIS_URL": "redis://cache.internal:6379/3",
        "GRIM_STACK_KAFKA_PORT": "29092",
    }
    stack = Stack(StackConfig.from_env(env))
    assert stack.env() == {
        "GRIM_KAFKA_BOOTSTRAP": "broker-a:9092,broker-b:9092",
        "GRIM_DATABASE_URL": "postgresql://app:secret@db.internal:5432/grim",
        "GRIM_REDIS_URL": "redis://cache.internal:6379/3",
    }
    assert stack.postgres.address == "postgresql://app:***@db.internal:5432/grim"
    empty = Stack(StackConfig.from_env({"GRIM_REDIS_URL": "  "}))
    assert empty.env()["GRIM_REDIS_URL"] == "redis://127.0.0.1:16379/0"


def test_external_server_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = StackConfig.from_env(
        {"GRIM_RUN_DIR": str(tmp_path), "GRIM_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    )
    redis_status = Stack(cfg).redis.status()
    assert redis_status.state == "external"
    assert redis_status.pid is None and redis_status.log_path is None
    assert redis_status.detail.startswith("not answering")


def test_nothing_started_means_stopped(tmp_path: Path) -> None:
    stack = Stack(StackConfig.from_env({"GRIM_RUN_DIR": str(tmp_path)}))
    assert [(s.name, s.state, s.pid) for s in stack.status()] == [
        ("kafka", "stopped", None),
        ("postgres", "stopped", None),
        ("redis", "stopped", None),
    ]


def test_server_properties(tmp_path: Path) -> None:
    cfg = StackConfig(run_dir=tmp_path, kafka_port=29092)
    props = _props(render_server_properties(cfg))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"].startswith("PLAINTEXT://127.0.0.1:29092")
    assert props["controller.listener.names"] == "CONTROLLER"
    assert "CONTROLLER:PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for single_node in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "num.partitions",
    ):
        assert props[single_node] == "1", single_node
    assert "zookeeper.connect" not in props


def test_postgres_and_redis_command_lines(tmp_path: Path) -> None:
    cfg = StackConfig(run_dir=tmp_path, postgres_port=25432, redis_port=26379)
    options = server_options(cfg)
    assert "-c listen_addresses=127.0.0.1" in options
    assert "-c port=25432" in options
    assert f"-c unix_socket_directories={tmp_path / 'postgres'}" in options
    args = server_args("/usr/bin/redis-server", cfg)
    flags = dict(zip(args[1::2], args[2::2], strict=True))
    assert flags["--port"] == "26379" and flags["--bind"] == "127.0.0.1"
    assert flags["--dir"] == str(tmp_path / "redis")
    assert flags["--appendonly"] == "yes" and flags["--daemonize"] == "no"


def test_repo_root_falls_back_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_repo_root(Path("/")) == tmp_path
    assert find_repo_root(REPO_ROOT / "grim" / "stack" / "config.py") == REPO_ROOT


def test_pidfile_ownership_needs_matching_cmdline(tmp_path: Path) -> None:
    pidfile = tmp_path / "x.pid"
    assert procs.owned_pid(pidfile, ["anything"]) is None  # no pidfile
    procs.write_pidfile(pidfile, os.getpid())
    assert procs.read_pidfile(pidfile) == os.getpid()
    mine = procs.cmdline(os.getpid())
    assert mine
    assert procs.owned_pid(pidfile, [mine[0]]) == os.getpid()
    # Same pid, but not what we would have started: never ours.
    assert procs.owned_pid(pidfile, ["kafka.Kafka", str(tmp_path)]) is None
    pidfile.write_text("garbage\n")
    assert procs.read_pidfile(pidfile) is None


def test_busy_port_is_reported_with_its_variable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert procs.port_in_use(port)
        comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
        assert procs.port_owner(port) == f"pid {os.getpid()} ({comm})"
        with pytest.raises(StackError, match=f"port {port}.*GRIM_STACK_REDIS_PORT"):
            procs.require_free_port(port, "redis", "GRIM_STACK_REDIS_PORT")
    assert not procs.port_in_use(port)


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("".join(f"line {i}\n" for i in range(20000)))
    assert procs.tail(log, 2) == "line 19998\nline 19999"
    assert procs.tail(log, 15000).splitlines()[0] == "line 5000"  # spans several reads
    assert procs.tail(log, 0) == ""
    assert procs.tail(tmp_path / "missing", 5) == ""


def test_run_coro_without_a_loop() -> None:
    assert probes.run_coro(lambda: asyncio.sleep(0, "done")) == "done"


async def test_run_coro_inside_a_running_loop() -> None:
    # Stack.up() may be called from async code (fixtures); probes must still work.
    assert probes.run_coro(lambda: asyncio.sleep(0, "done")) == "done"


def test_split_bootstrap() -> None:
    assert probes.split_bootstrap("a:1, b:2,[::1]:3") == [("a", 1), ("b", 2), ("::1", 3)]
