"""The supervisor with real subprocesses: readiness, restart after kill -9, clean stop with
no orphans (grandchildren included), stale pidfiles from a previous run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from grim.demo.supervisor import ServiceSpec, Supervisor, kill_stale
from grim.demo.system import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _wait(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _specs(tmp: Path) -> list[ServiceSpec]:
    web = free_port()
    shell = free_port()
    # The second one leaves a grandchild (sleep) behind it: stop must take it too.
    script = (f"{sys.executable} -m http.server {shell} --bind 127.0.0.1 & "
              f"echo $! > {tmp}/grandchild; sleep 1000")
    return [
        ServiceSpec("web", (sys.executable, "-m", "http.server", str(web), "--bind",
                            "127.0.0.1"), web, "/"),
        ServiceSpec("shell", ("/bin/sh", "-c", script), shell, "/"),
    ]


def test_start_ready_restart_and_stop_without_orphans(tmp_path: Path) -> None:
    sup = Supervisor(_specs(tmp_path), {"GRIM_DEMO_TEST": "1"}, tmp_path / ".run")
    sup.start_all()
    try:
        sup.wait_ready(timeout=30)
        sup.watch(interval=0.05)
        first = {s.name: s.pid for s in sup.status()}
        assert all(s.ready for s in sup.status())
        assert (tmp_path / ".run/services/web.pid").read_text().split()[0] == str(first["web"])

        killed = sup.kill("web")
        assert killed == first["web"]
        _wait(lambda: sup.restarts()["web"] == 1)
        sup.wait_ready(["web"], timeout=30)
        assert {s.name: s.pid for s in sup.status()}["web"] != first["web"]
        assert sup.restarts()["shell"] == 0
        grandchild = int((tmp_path / "grandchild").read_text())
        assert _alive(grandchild)
    finally:
        sup.stop_all(grace=5)
    # Signals reach the grandchild with its group; it may take a moment to exit.
    _wait(lambda: not any(_alive(pid) for pid in (first["shell"], grandchild)), timeout=10)
    assert not list((tmp_path / ".run/services").glob("*.pid"))


def test_a_stale_pidfile_stops_only_our_old_process(tmp_path: Path) -> None:
    sup = Supervisor(_specs(tmp_path)[:1], {}, tmp_path / ".run")
    sup.start("web")
    pid = sup.status()[0].pid
    assert pid is not None
    stale = tmp_path / "old.pid"
    stale.write_text((tmp_path / ".run/services/web.pid").read_text())
    sup._procs["web"].wanted = False  # as if this supervisor had crashed
    assert kill_stale(stale, grace=5)
    _wait(lambda: sup._procs["web"].popen.poll() is not None)  # type: ignore[union-attr]
    # A pidfile naming a pid that now runs something else is left alone.
    other = tmp_path / "other.pid"
    other.write_text(f"{os.getpid()}\nnot our command\n")
    assert not kill_stale(other)
    assert _alive(os.getpid())
