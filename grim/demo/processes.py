"""Process-group signalling and pidfiles of the supervisor (Linux /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(popen: subprocess.Popen[bytes], grace: float) -> None:
    if popen.poll() is None:
        signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            signal_group(popen.pid, signal.SIGKILL)
            popen.wait(5)
    # Children of a process that exited on its own still belong to its group.
    signal_group(popen.pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_stale(pidfile: Path, grace: float = 10.0) -> bool:
    """Stop the process a previous run left behind, if the pidfile's command still matches."""
    if not pidfile.exists():
        return False
    lines = pidfile.read_text().splitlines()
    pidfile.unlink(missing_ok=True)
    if len(lines) < 2 or not lines[0].isdigit():
        return False
    pid = int(lines[0])
    if _cmdline(pid) != lines[1].strip():
        return False  # the pid was reused by something that is not ours
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _cmdline(pid):
        time.sleep(0.1)
    signal_group(pid, signal.SIGKILL)
    return True
