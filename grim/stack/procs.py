"""Processes started by the stack: pidfiles, ownership checks, detached start, stop.

A pid is only ever treated as ours when its pidfile exists *and* /proc/<pid>/cmdline
still carries the markers of what we started (a data dir, a config path): pids get
reused, and this code must never signal a process it did not start.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from grim.stack.errors import StackError

# Popen objects of the servers this process started, so they can be reaped (no zombies
# while the starting process lives on, e.g. a test session).
_children: dict[int, subprocess.Popen[bytes]] = {}


def read_pidfile(path: Path) -> int | None:
    """First line of a pidfile as a pid (PostgreSQL's postmaster.pid has more lines)."""
    try:
        first = path.read_text().splitlines()[0].strip()
    except (FileNotFoundError, IndexError):
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def write_pidfile(path: Path, pid: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def cmdline(pid: int) -> list[str] | None:
    """Arguments of a live process; None when it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        return None  # zombies and kernel threads have an empty cmdline
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def matches(args: Sequence[str], markers: Sequence[str]) -> bool:
    """Every marker occurs in some argument."""
    return all(any(marker in arg for arg in args) for marker in markers)


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def owned_pid(pidfile: Path, markers: Sequence[str]) -> int | None:
    pid = read_pidfile(pidfile)
    if pid is None or not alive(pid):
        return None
    args = cmdline(pid)
    return pid if args is not None and matches(args, markers) else None


def spawn_detached(
    args: Sequence[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> int:
    """Start a server in its own session, output appended to log_path."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # survives the terminal; one group to kill
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return


def terminate(pid: int, grace: float, name: str) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; also kills leftovers in its group.

    Only call with a pid from owned_pid(). A group is signalled only when the process
    leads it (we started it with start_new_session); while any member lives, the
    kernel does not hand that id to a new process, so the group is still ours.
    """
    try:
        leads_group = os.getpgid(pid) == pid
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, grace):
        if leads_group:
            _signal_group(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        if not wait_gone(pid, 10):
            raise StackError(f"{name}: pid {pid} survived SIGKILL")
    if leads_group:
        _signal_group(pid, signal.SIGKILL)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: sockets in TIME_WAIT from a server we just stopped do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_owner(port: int) -> str | None:
    """'pid N (name)' of the process listening on a TCP port, when /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            for fd in (proc_dir / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    name = (proc_dir / "comm").read_text().strip()
                    return f"pid {proc_dir.name} ({name})"
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return None


def require_free_port(port: int, name: str, env_var: str) -> None:
    if not port_in_use(port):
        return
    owner = port_owner(port)
    by = f" by {owner}" if owner else " by another process"
    raise StackError(
        f"{name}: port {port} on 127.0.0.1 is already in use{by}; stop that process or "
        f"set {env_var} to a free port"
    )


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file, read from the end."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            start, data = end, b""
            while start > 0 and data.count(b"\n") <= lines:
                start = max(0, start - 64 * 1024)
                fh.seek(start)
                data = fh.read(end - start)
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:]) if lines else ""


def run(args: Sequence[str], what: str, timeout: float = 120, **kwargs: object) -> str:
    """Run a short command to completion; StackError with its output when it fails."""
    try:
        done = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except FileNotFoundError:
        raise StackError(f"{what}: {args[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise StackError(f"{what}: `{' '.join(args)}` did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise StackError(f"{what} failed (exit {done.returncode}): {output[-2000:]}")
    return done.stdout
