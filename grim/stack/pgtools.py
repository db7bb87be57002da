"""Helpers for the PostgreSQL component: binaries, server options, the system user."""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from grim.stack import procs
from grim.stack.config import LOOPBACK, StackConfig

SYSTEM_USER = "postgres"  # created by the Debian package; PostgreSQL refuses to run as root


def _version_key(initdb: str) -> tuple[int, ...]:
    version = Path(initdb).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_bindir() -> Path | None:
    """Newest /usr/lib/postgresql/<v>/bin, else pg_config --bindir, else initdb on PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if debian:
        return Path(debian[-1]).parent
    if shutil.which("pg_config"):
        bindir = Path(procs.run(["pg_config", "--bindir"], "postgres: pg_config").strip())
        if (bindir / "initdb").is_file():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def server_options(cfg: StackConfig) -> str:
    """The -o string pg_ctl hands (through /bin/sh) to the postgres server."""
    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(cfg.postgres_port),
        "unix_socket_directories": str(cfg.postgres_dir),
        # Five services with pools plus test sessions outgrow the default 100.
        "max_connections": "200",
    }
    return " ".join(f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.items())


def as_user(user: str | None, args: list[str]) -> list[str]:
    """args run as `user` (we are root), or unchanged when user is None."""
    if user is None:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *args]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(args)]


def can_traverse(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def make_parents_traversable(
    path: Path, user: pwd.struct_passwd, echo: Callable[[str], None]
) -> None:
    """Add o+x to each parent of `path` that `user` cannot search (we are root).

    The server opens its data dir by path, so every parent must be searchable for it;
    pytest's tmp dirs, for one, are 0700. o+x lets others pass through, not list.
    """
    gids = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for parent in path.parents:
        st = parent.stat()
        if not can_traverse(st, user.pw_uid, gids):
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            echo(f"postgres: made {parent} traversable (o+x) for the {user.pw_name} user")
