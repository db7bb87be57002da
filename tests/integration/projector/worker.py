"""Run the projector worker as a subprocess of the test, with GRIM_* from the session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from grim.settings import GrimSettings

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    def __init__(self, settings: GrimSettings, *, projection: str = "main", rules: int = 1,
                 data_dir: str | None = None, extra: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="grim-projector-")
        self.log_path = Path(self.data_dir) / "worker.log"
        self.env = {
            **os.environ,
            "GRIM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "GRIM_DATABASE_URL": settings.database_url,
            "GRIM_REDIS_URL": settings.redis_url,
            "GRIM_NAMESPACE": settings.namespace,
            "GRIM_PROJECTOR_PROJECTION": projection,
            "GRIM_PROJECTOR_RULE_VERSION": str(rules),
            "GRIM_PROJECTOR_PORT": str(self.port),
            "GRIM_PROJECTOR_DATA_DIR": self.data_dir,
            "GRIM_PROJECTOR_TICK_INTERVAL_S": "0.5",
            **(extra or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/grim"), "projector", "run", "--loglevel", "warning"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
