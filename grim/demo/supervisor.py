"""Start, watch and stop every Grim service and the sandbox stand-ins as subprocesses.

Each process gets a pidfile and a log under `<run dir>/services/`, is ready when its
readiness URL answers 200, is restarted when it dies unexpectedly, and is stopped
with SIGTERM then SIGKILL (its whole process group, so nothing is orphaned).
The chaos test uses `kill()` to SIGKILL one at random moments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from grim.demo.processes import kill_stale, signal_group, terminate
from grim.demo.settings import DemoSettings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: tuple[str, ...]
    port: int
    ready_path: str = "/readyz"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        return self.base_url + self.ready_path


def _grim(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "grim.cli.main", *args)


def service_specs(s: DemoSettings) -> list[ServiceSpec]:
    """Sandbox fakes first (the services call them), then the five services."""
    specs = []
    if not s.real_meta:
        specs.append(ServiceSpec("fake-graph", _grim(
            "dispatcher", "fake-graph", "--port", str(s.demo_graph_port),
            "--fault-rate", str(s.demo_graph_fault_rate)), s.demo_graph_port, "/healthz"))
    specs += [
        ServiceSpec("fake-telegram", _grim(
            "bot-gateway", "sandbox-telegram", "--port", str(s.demo_telegram_port),
            "--allow-http-webhook"), s.demo_telegram_port, "/openapi.json"),
        ServiceSpec("sandbox-gateway", _grim(
            "payments", "sandbox-gateway", "--port", str(s.demo_sandbox_port)),
            s.demo_sandbox_port, "/healthz"),
        ServiceSpec("payments", _grim("payments", "serve"), s.demo_payments_port),
        ServiceSpec("redirect", _grim("redirect", "serve"), s.demo_redirect_port),
        ServiceSpec("bot-gateway", _grim("bot-gateway", "serve"), s.demo_bot_gateway_port),
        ServiceSpec("projector", _grim("projector", "run"), s.demo_projector_port),
        ServiceSpec("dispatcher", _grim("dispatcher", "run"), s.demo_dispatcher_port),
        ServiceSpec("admin", _grim("admin", "serve", "--port", str(s.demo_admin_port)),
                    s.demo_admin_port),
    ]
    return specs


def service_env(s: DemoSettings) -> dict[str, str]:
    """GRIM_* variables every child gets: shared settings plus each service's address."""
    host = "http://127.0.0.1"
    run = Path(s.demo_run_dir).resolve()
    env = {
        "GRIM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "GRIM_DATABASE_URL": s.database_url,
        "GRIM_REDIS_URL": s.redis_url,
        "GRIM_NAMESPACE": s.namespace,
        "GRIM_SECRET_KEY": s.secret_key.get_secret_value(),
        "GRIM_ADMIN_TOKEN": s.admin_token.get_secret_value(),
        "GRIM_SERVICE_TOKEN": s.service_token.get_secret_value(),
        "GRIM_PUBLIC_BASE_URL": f"{host}:{s.demo_redirect_port}",
        "GRIM_TELEGRAM_API_BASE": f"{host}:{s.demo_telegram_port}",
        "GRIM_SANDBOX_API_BASE": f"{host}:{s.demo_sandbox_port}",
        "GRIM_SANDBOX_PORT": str(s.demo_sandbox_port),
        "GRIM_REDIRECT_PORT": str(s.demo_redirect_port),
        # The simulator speaks for many visitors from 127.0.0.1 through X-Forwarded-For.
        "GRIM_REDIRECT_TRUSTED_PROXIES": "127.0.0.1/32",
        "GRIM_REDIRECT_SPOOL_DIR": str(run / "redirect-spool"),
        "GRIM_BOT_GATEWAY_PORT": str(s.demo_bot_gateway_port),
        "GRIM_BOT_GATEWAY_PUBLIC_URL": f"{host}:{s.demo_bot_gateway_port}",
        "GRIM_PAYMENTS_URL": f"{host}:{s.demo_payments_port}",
        "GRIM_PAYMENTS_PORT": str(s.demo_payments_port),
        "GRIM_PAYMENTS_PUBLIC_URL": f"{host}:{s.demo_payments_port}",
        "GRIM_PROJECTOR_PORT": str(s.demo_projector_port),
        "GRIM_PROJECTOR_DATA_DIR": str(run / "projector"),
        "GRIM_PROJECTOR_TICK_INTERVAL_S": "1",
        "GRIM_DISPATCHER_PORT": str(s.demo_dispatcher_port),
        # Short in-process backoff so a flaky Graph is retried within the demo's drain.
        "GRIM_DISPATCHER_RETRY_DELAYS_SECONDS": "[1, 2, 5, 10]",
        "GRIM_LOG_LEVEL": s.log_level,
    }
    if s.real_meta:
        env["GRIM_META_GRAPH_BASE"] = s.meta_graph_base
    else:
        env["GRIM_META_GRAPH_BASE"] = f"{host}:{s.demo_graph_port}"
    return env


@dataclass
class _Proc:
    spec: ServiceSpec
    popen: subprocess.Popen[bytes] | None = None
    wanted: bool = False
    restarts: int = 0
    log_path: Path | None = None
    started_at: float = 0.0
    backoff: float = 0.25


@dataclass
class Status:
    name: str
    pid: int | None
    running: bool
    ready: bool
    restarts: int
    url: str
    log: str


@dataclass
class Supervisor:
    specs: list[ServiceSpec]
    env: Mapping[str, str]
    run_dir: Path
    echo: Callable[[str], None] = lambda _msg: None
    restart_delay: float = 0.5
    _procs: dict[str, _Proc] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _watcher: threading.Thread | None = None
    _stop_watch: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.dir = self.run_dir / "services"
        self.dir.mkdir(parents=True, exist_ok=True)
        for value in self.env.values():
            # Data dirs the services expect to exist (projector tables, redirect spool).
            if value.startswith(str(self.run_dir)):
                Path(value).mkdir(parents=True, exist_ok=True)
        self._procs = {s.name: _Proc(s) for s in self.specs}

    @classmethod
    def from_settings(cls, s: DemoSettings, echo: Callable[[str], None] = lambda _m: None
                      ) -> Supervisor:
        return cls(service_specs(s), service_env(s), Path(s.demo_run_dir).resolve(), echo)

    def spec(self, name: str) -> ServiceSpec:
        return self._procs[name].spec

    # Lifecycle of one process.
    def start(self, name: str) -> None:
        with self._lock:
            proc = self._procs[name]
            if proc.popen is not None and proc.popen.poll() is None:
                return
            kill_stale(self.dir / f"{name}.pid")
            proc.log_path = self.dir / f"{name}.log"
            log = open(proc.log_path, "ab")  # noqa: SIM115 - owned by the child from here on
            env = {**os.environ, **self.env}
            proc.popen = subprocess.Popen(
                proc.spec.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.run_dir.parent
                if (self.run_dir.parent / "pyproject.toml").exists() else None)
            log.close()
            proc.wanted = True
            proc.started_at = time.monotonic()
            (self.dir / f"{name}.pid").write_text(f"{proc.popen.pid}\n{' '.join(proc.spec.argv)}\n")

    def stop(self, name: str, grace: float = 10.0) -> None:
        with self._lock:
            proc = self._procs[name]
            proc.wanted = False
            popen = proc.popen
        if popen is not None:
            terminate(popen, grace)
        (self.dir / f"{name}.pid").unlink(missing_ok=True)

    def kill(self, name: str) -> int | None:
        """SIGKILL the process group (chaos); the watcher restarts it."""
        with self._lock:
            popen = self._procs[name].popen
            if popen is None or popen.poll() is not None:
                return None
            signal_group(popen.pid, signal.SIGKILL)
            return popen.pid

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    # All of them.
    def start_all(self, names: list[str] | None = None) -> None:
        for spec in self.specs:
            if names is None or spec.name in names:
                self.echo(f"starting {spec.name} on :{spec.port}")
                self.start(spec.name)

    def stop_all(self, grace: float = 10.0) -> None:
        self.unwatch()
        for spec in reversed(self.specs):
            self.stop(spec.name, grace)

    def is_ready(self, name: str) -> bool:
        try:
            return httpx.get(self.spec(name).ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, names: list[str] | None = None, timeout: float = 90.0) -> None:
        pending = [s.name for s in self.specs if names is None or s.name in names]
        deadline = time.monotonic() + timeout
        while pending:
            for name in list(pending):
                popen = self._procs[name].popen
                if popen is not None and popen.poll() is not None and not self.watching:
                    raise RuntimeError(f"{name} exited with {popen.returncode}; see "
                                       f"{self._procs[name].log_path}")
                if self.is_ready(name):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                logs = ", ".join(str(self.dir / f"{n}.log") for n in pending)
                raise TimeoutError(f"not ready after {timeout:.0f}s: {pending} (logs: {logs})")
            if pending:
                time.sleep(0.3)

    def status(self) -> list[Status]:
        out = []
        for name, proc in self._procs.items():
            running = proc.popen is not None and proc.popen.poll() is None
            out.append(Status(name, proc.popen.pid if proc.popen else None, running,
                              running and self.is_ready(name), proc.restarts,
                              proc.spec.base_url, str(proc.log_path or "-")))
        return out

    def restarts(self) -> dict[str, int]:
        return {name: p.restarts for name, p in self._procs.items()}

    # Restart on crash.
    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.is_alive()

    def watch(self, interval: float = 0.3) -> None:
        if self.watching:
            return
        self._stop_watch.clear()
        self._watcher = threading.Thread(target=self._watch_loop, args=(interval,),
                                         name="grim-supervisor", daemon=True)
        self._watcher.start()

    def unwatch(self) -> None:
        self._stop_watch.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._watcher = None

    def _watch_loop(self, interval: float) -> None:
        # Each dead process gets its own restart time, so one crash-looping service never
        # delays the restart of another.
        due: dict[str, float] = {}
        while not self._stop_watch.wait(interval):
            now = time.monotonic()
            for name, proc in self._procs.items():
                with self._lock:
                    if not (proc.wanted and proc.popen is not None
                            and proc.popen.poll() is not None):
                        continue
                    if name not in due:
                        # Kill what is left of the group (a child of the dead process).
                        signal_group(proc.popen.pid, signal.SIGKILL)
                        # A process that dies right after starting waits longer each time.
                        quick = now - proc.started_at < 10
                        proc.backoff = (min(proc.backoff * 2, 10.0) if quick
                                        else self.restart_delay)
                        due[name] = now + proc.backoff
                        continue
                    if now < due[name]:
                        continue
                    del due[name]
                    proc.restarts += 1
                    self.echo(f"{name} exited ({proc.popen.returncode}); "
                              f"restart #{proc.restarts}")
                    proc.popen = None
                    self.start(name)
