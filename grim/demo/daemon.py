"""The background supervisor behind `grim services up`: starts every service, restarts the
ones that crash, and stops them all on SIGTERM (`grim services down`).

Run as `python -m grim.demo.daemon`; settings come from GRIM_* like everywhere else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from grim.demo.settings import DemoSettings
from grim.demo.supervisor import Supervisor, kill_stale, service_specs

PIDFILE = "supervisor.pid"


def pidfile(settings: DemoSettings) -> Path:
    return Path(settings.demo_run_dir).resolve() / "services" / PIDFILE


def spawn(settings: DemoSettings, env: dict[str, str]) -> int:
    """Start the daemon detached from this terminal; returns its pid."""
    path = pidfile(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    kill_stale(path)
    argv = [sys.executable, "-m", "grim.demo.daemon"]
    with open(path.parent / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    path.write_text(f"{proc.pid}\n{' '.join(argv)}\n")
    return proc.pid


def stop(settings: DemoSettings) -> bool:
    """SIGTERM the daemon (it stops its children) and clean whatever a crash left behind."""
    stopped = kill_stale(pidfile(settings), grace=30.0)
    folder = pidfile(settings).parent
    for spec in service_specs(settings):
        stopped = kill_stale(folder / f"{spec.name}.pid") or stopped
    return stopped


def main() -> None:
    settings = DemoSettings()
    done = threading.Event()
    sup = Supervisor.from_settings(settings, echo=lambda m: print(m, flush=True))
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sup.start_all()
    sup.watch()
    print(f"supervising {len(sup.specs)} processes", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        print("stopping", flush=True)
        sup.stop_all()
        pidfile(settings).unlink(missing_ok=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
