"""A private PostgreSQL cluster under the run dir, managed with initdb and pg_ctl."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from grim.stack import probes, procs
from grim.stack.base import Component, Echo
from grim.stack.config import PG_DATABASE, PG_PASSWORD, PG_USER, StackConfig
from grim.stack.errors import StackError
from grim.stack.pgtools import (
    SYSTEM_USER,
    as_user,
    find_bindir,
    make_parents_traversable,
    server_options,
)

SOCKET_PATH_MAX = 107  # sun_path limit on Linux, minus the terminating NUL


class Postgres(Component):
    name = "postgres"
    port_env = "GRIM_STACK_POSTGRES_PORT"
    ready_timeout = 30.0
    stop_grace = 30.0

    def __init__(self, cfg: StackConfig, echo: Echo | None = None) -> None:
        super().__init__(cfg, echo)
        self.dir = cfg.postgres_dir
        self.data = self.dir / "data"
        self.pidfile = self.data / "postmaster.pid"  # written by the server itself
        self._bindir: Path | None = None

    @property
    def external_url(self) -> str | None:
        return self.cfg.external_database_url

    @property
    def local_url(self) -> str:
        return self.cfg.local_database_url()

    @property
    def address(self) -> str:
        # Never print the password.
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.url)

    @property
    def log_path(self) -> Path:
        return self.dir / "postgres.log"

    @property
    def ports(self) -> list[int]:
        return [self.cfg.postgres_port]

    def owned_pid(self) -> int | None:
        return procs.owned_pid(self.pidfile, [str(self.data)])

    def stale_pidfile(self) -> Path | None:
        return self.pidfile if self.pidfile.exists() and self.owned_pid() is None else None

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        if self._bindir is None:
            raise StackError(
                "postgres: PostgreSQL binaries not found (looked in /usr/lib/postgresql/*/bin, "
                "pg_config, PATH); run scripts/install-prereqs.sh"
            )
        return self._bindir

    def _system_user(self) -> pwd.struct_passwd | None:
        """The account the server runs as when we are root; None when we are not."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise StackError(
                f"postgres: running as root needs the `{SYSTEM_USER}` system user "
                "(created by the Debian postgresql package); run scripts/install-prereqs.sh"
            ) from None

    def _as_server_user(self, args: list[str]) -> list[str]:
        user = self._system_user()
        return as_user(user.pw_name if user else None, args)

    def _run(self, args: list[str], what: str, timeout: float = 120) -> str:
        # cwd inside our dir: initdb and psql fail when the cwd is unreadable for them.
        return procs.run(self._as_server_user(args), what, timeout=timeout, cwd=self.dir)

    def _major(self) -> str:
        out = procs.run([str(self.bindir / "pg_ctl"), "--version"], "postgres: pg_ctl --version")
        found = re.search(r"\(PostgreSQL\) (\d+)", out)
        if not found:
            raise StackError(f"postgres: cannot read the version from {out!r}")
        return found.group(1)

    def preflight(self) -> None:
        self._system_user()
        socket = self.dir / f".s.PGSQL.{self.cfg.postgres_port}"
        if len(str(socket)) > SOCKET_PATH_MAX:
            raise StackError(
                f"postgres: socket path {socket} is longer than {SOCKET_PATH_MAX} bytes; "
                "choose a shorter GRIM_RUN_DIR"
            )
        version_file = self.data / "PG_VERSION"
        if version_file.exists():
            made_by, running = version_file.read_text().strip(), self._major()
            if made_by != running:
                raise StackError(
                    f"postgres: {self.data} was created by PostgreSQL {made_by} but the "
                    f"binaries in {self.bindir} are {running}; delete {self.dir} to start over"
                )

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        if user is None:
            return
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.dir.chmod(0o750)
        make_parents_traversable(self.dir, user, self.echo)

    def launch(self) -> None:
        self._prepare_dir()
        if not (self.data / "PG_VERSION").exists():
            self.echo(f"postgres: initdb {self.data} (first run only)")
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                "postgres: initdb",
            )
        self.clear_stale()
        try:
            self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(int(self.ready_timeout)),
                    "-o",
                    server_options(self.cfg),
                ],
                "postgres: pg_ctl start",
                timeout=self.ready_timeout + 15,
            )
        except StackError as exc:
            raise StackError(self._failure(str(exc))) from None
        self.echo(f"postgres: started pid {self.owned_pid()} (log {self.log_path})")
        self._bootstrap()

    def _psql(self, *sql: str) -> str:
        args = [
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.dir),
            "-p",
            str(self.cfg.postgres_port),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        for statement in sql:
            args += ["-c", statement]
        return self._run(args, "postgres: psql")

    def _bootstrap(self) -> None:
        """Role grim (may create databases; tests make one per session) owning db grim."""
        password = PG_PASSWORD.replace("'", "''")
        self._psql(
            f"DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_USER}') THEN "
            f"CREATE ROLE {PG_USER} LOGIN CREATEDB PASSWORD '{password}'; "
            f"ELSE ALTER ROLE {PG_USER} LOGIN CREATEDB PASSWORD '{password}'; "
            f"END IF; END $$;"
        )
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")
        if exists.strip() != "1":
            self._psql(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}")

    def stop(self, pid: int) -> None:
        pg_ctl = str(self.bindir / "pg_ctl")
        for mode in ("fast", "immediate"):
            try:
                self._run(
                    [pg_ctl, "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "30"],
                    f"postgres: pg_ctl stop -m {mode}",
                    timeout=45,
                )
            except StackError as exc:
                self.echo(str(exc))
                continue
            if procs.wait_gone(pid, 5):
                return
        # pg_ctl could not stop it: kill the postmaster and its backends.
        procs.terminate(pid, 5, self.name)

    def ping(self, timeout: float) -> None:
        probes.ping_postgres(self.url, timeout)
