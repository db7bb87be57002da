"""Stack: brings Kafka, PostgreSQL and Redis up and down together."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from grim.stack import procs
from grim.stack.base import Component, ComponentStatus, Echo
from grim.stack.config import StackConfig
from grim.stack.errors import StackError
from grim.stack.kafka import Kafka
from grim.stack.postgres import Postgres
from grim.stack.redis import Redis


class Stack:
    """The local Kafka + PostgreSQL + Redis of one run dir.

    Every method is safe to repeat. Only processes recorded in this run dir's pidfiles
    (and still carrying our command line) are ever stopped.
    """

    def __init__(self, cfg: StackConfig, echo: Echo | None = None) -> None:
        self.cfg = cfg
        self.echo = echo or (lambda _message: None)
        self.kafka = Kafka(cfg, self.echo)
        self.postgres = Postgres(cfg, self.echo)
        self.redis = Redis(cfg, self.echo)

    @property
    def components(self) -> list[Component]:
        return [self.kafka, self.postgres, self.redis]

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        names = ", ".join(c.name for c in self.components)
        raise StackError(f"unknown component {name!r} (one of: {names})")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One up/down at a time per run dir (parallel test sessions share it)."""
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.run_dir / ".stack.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.echo(f"waiting for another `grim stack` command on {self.cfg.run_dir}")
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self) -> list[ComponentStatus]:
        with self._locked():
            # Check everything before starting anything, so a busy port or a missing
            # binary does not leave half a stack behind.
            to_start: list[Component] = []
            for comp in self.components:
                if comp.external_url:
                    self.echo(f"{comp.name}: external at {comp.address}, not started")
                    continue
                pid = comp.owned_pid()
                if pid is not None:
                    self.echo(f"{comp.name}: already running (pid {pid})")
                    continue
                comp.preflight()
                for port in comp.ports:
                    procs.require_free_port(port, comp.name, comp.port_env)
                to_start.append(comp)
            # Kafka is the slowest to answer: launch it first, wait for it last.
            for comp in to_start:
                comp.clear_stale()
                comp.launch()
            for comp in sorted(self.components, key=lambda c: c is self.kafka):
                comp.wait_ready()
        return self.status()

    def down(self) -> None:
        with self._locked():
            for comp in reversed(self.components):
                if comp.external_url:
                    continue
                pid = comp.owned_pid()
                if pid is None:
                    comp.clear_stale()
                    self.echo(f"{comp.name}: not running")
                    continue
                self.echo(f"{comp.name}: stopping pid {pid}")
                started = time.monotonic()
                comp.stop(pid)
                if procs.alive(pid):
                    raise StackError(f"{comp.name}: pid {pid} is still alive; see {comp.log_path}")
                self.echo(f"{comp.name}: stopped ({time.monotonic() - started:.1f} s)")

    def status(self) -> list[ComponentStatus]:
        return [comp.status() for comp in self.components]

    def env(self) -> dict[str, str]:
        return {
            "GRIM_KAFKA_BOOTSTRAP": self.kafka.url,
            "GRIM_DATABASE_URL": self.postgres.url,
            "GRIM_REDIS_URL": self.redis.url,
        }
