"""Types shared by the stack components, and the life cycle they have in common."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grim.stack import procs
from grim.stack.errors import StackError

if TYPE_CHECKING:
    from grim.stack.config import StackConfig

State = Literal["running", "stopped", "external", "failed"]
Echo = Callable[[str], None]


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: State
    pid: int | None
    address: str
    log_path: Path | None
    detail: str = ""


def _quiet(_: str) -> None:
    return None


class Component(ABC):
    """One server of the stack: either started here (pidfile-owned) or external."""

    name: str
    port_env: str  # the variable that moves this component to another port
    ready_timeout: float
    stop_grace: float

    def __init__(self, cfg: StackConfig, echo: Echo | None = None) -> None:
        self.cfg = cfg
        self.echo = echo or _quiet

    # --- per component -------------------------------------------------------------
    @property
    @abstractmethod
    def external_url(self) -> str | None: ...

    @property
    @abstractmethod
    def local_url(self) -> str: ...

    @property
    @abstractmethod
    def log_path(self) -> Path: ...

    @property
    @abstractmethod
    def ports(self) -> list[int]: ...

    @abstractmethod
    def owned_pid(self) -> int | None:
        """Pid of the server this stack started, if it is alive; never anyone else's."""

    @abstractmethod
    def stale_pidfile(self) -> Path | None:
        """The pidfile left behind by a server that is gone, if any."""

    def clear_stale(self) -> None:
        stale = self.stale_pidfile()
        if stale is not None:
            stale.unlink(missing_ok=True)

    @abstractmethod
    def preflight(self) -> None:
        """Fail early (missing binaries, bad paths) before anything is started."""

    @abstractmethod
    def launch(self) -> None:
        """Start the server; may return before it answers."""

    @abstractmethod
    def stop(self, pid: int) -> None: ...

    @abstractmethod
    def ping(self, timeout: float) -> None:
        """Raise unless the server answers a real request."""

    # --- shared --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.external_url or self.local_url

    @property
    def address(self) -> str:
        return self.url

    def _answer(self, timeout: float = 3.0) -> str | None:
        """None when the server answers, else why not."""
        try:
            self.ping(timeout)
        except Exception as exc:  # any failure to answer is reported, not raised
            return f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return None

    def status(self) -> ComponentStatus:
        if self.external_url:
            problem = self._answer()
            detail = f"not answering ({problem})" if problem else "answers"
            return ComponentStatus(self.name, "external", None, self.address, None, detail)
        pid = self.owned_pid()
        if pid is not None:
            problem = self._answer()
            if problem:
                return ComponentStatus(
                    self.name,
                    "failed",
                    pid,
                    self.address,
                    self.log_path,
                    f"running but not answering ({problem})",
                )
            return ComponentStatus(
                self.name, "running", pid, self.address, self.log_path, "answers"
            )
        stale = self.stale_pidfile()
        if stale is not None:
            return ComponentStatus(
                self.name,
                "failed",
                None,
                self.address,
                self.log_path,
                f"exited without `grim stack down` (stale {stale})",
            )
        return ComponentStatus(self.name, "stopped", None, self.address, self.log_path)

    def wait_ready(self) -> None:
        """Poll until the server answers; fail fast when our process dies."""
        started = time.monotonic()
        deadline = started + self.ready_timeout
        problem = "never polled"
        while time.monotonic() < deadline:
            if not self.external_url and self.owned_pid() is None:
                raise StackError(self._failure("process exited during startup"))
            problem = self._answer(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if problem is None:
                elapsed = time.monotonic() - started
                self.echo(f"{self.name}: answers at {self.address} ({elapsed:.1f} s)")
                return
            time.sleep(0.5)
        where = "external server" if self.external_url else "server"
        raise StackError(
            self._failure(f"{where} did not answer within {self.ready_timeout:.0f} s ({problem})")
        )

    def _failure(self, what: str) -> str:
        if self.external_url:
            return f"{self.name}: {what} at {self.address}"
        tail = procs.tail(self.log_path, 15)
        message = f"{self.name}: {what}; see {self.log_path}"
        return f"{message}\n--- last lines of {self.log_path.name} ---\n{tail}" if tail else message
