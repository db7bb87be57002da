"""A private redis-server under the run dir (append-only file on, loopback only)."""

from __future__ import annotations

import shutil
from pathlib import Path

from grim.stack import probes, procs
from grim.stack.base import Component, Echo
from grim.stack.config import LOOPBACK, StackConfig
from grim.stack.errors import StackError


def server_args(binary: str, cfg: StackConfig) -> list[str]:
    return [
        binary,
        "--port",
        str(cfg.redis_port),
        "--bind",
        LOOPBACK,
        "--dir",
        str(cfg.redis_dir),
        "--appendonly",
        "yes",
        "--daemonize",
        "no",
        # Keep /proc/<pid>/cmdline as started: it is how we recognise our server.
        "--set-proc-title",
        "no",
        "--logfile",
        "",
    ]


class Redis(Component):
    name = "redis"
    port_env = "GRIM_STACK_REDIS_PORT"
    ready_timeout = 30.0
    stop_grace = 15.0

    def __init__(self, cfg: StackConfig, echo: Echo | None = None) -> None:
        super().__init__(cfg, echo)
        self.dir = cfg.redis_dir
        self.pidfile = self.dir / "redis.pid"

    @property
    def external_url(self) -> str | None:
        return self.cfg.external_redis_url

    @property
    def local_url(self) -> str:
        return self.cfg.local_redis_url()

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def ports(self) -> list[int]:
        return [self.cfg.redis_port]

    def _markers(self) -> list[str]:
        return ["redis-server", str(self.dir)]

    def owned_pid(self) -> int | None:
        return procs.owned_pid(self.pidfile, self._markers())

    def stale_pidfile(self) -> Path | None:
        return self.pidfile if self.pidfile.exists() and self.owned_pid() is None else None

    def _binary(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis: `redis-server` not found; run scripts/install-prereqs.sh")
        return binary

    def preflight(self) -> None:
        self._binary()

    def launch(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pid = procs.spawn_detached(server_args(self._binary(), self.cfg), self.log_path, self.dir)
        procs.write_pidfile(self.pidfile, pid)
        self.echo(f"redis: started pid {pid} (log {self.log_path})")

    def stop(self, pid: int) -> None:
        # SIGTERM makes redis flush the append-only file before it exits.
        procs.terminate(pid, self.stop_grace, self.name)
        self.pidfile.unlink(missing_ok=True)

    def ping(self, timeout: float) -> None:
        probes.ping_redis(self.url, timeout)
