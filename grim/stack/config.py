"""Configuration of the local stack, read from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grim.stack.errors import StackError

LOOPBACK = "127.0.0.1"

DEFAULT_KAFKA_PORT = 19092
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_REDIS_PORT = 16379
DEFAULT_KAFKA_VERSION = "4.2.0"
DEFAULT_KAFKA_HEAP = "768m"

# Credentials of the local PostgreSQL; tests and services connect with these.
PG_USER = "grim"
PG_PASSWORD = "grim"
PG_DATABASE = "grim"

_HEAP_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+([.-][A-Za-z0-9]+)*$")


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory holding pyproject.toml above this package, else the cwd."""
    here = (start or Path(__file__)).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd().resolve()


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = (environ.get(name) or "").strip()
    return value or None


@dataclass(frozen=True)
class StackConfig:
    """Where the local stack lives and which ports it uses.

    ``external_*`` hold the URL of a server someone else runs; that component is then
    not started, only checked.
    """

    run_dir: Path
    kafka_port: int = DEFAULT_KAFKA_PORT
    postgres_port: int = DEFAULT_POSTGRES_PORT
    redis_port: int = DEFAULT_REDIS_PORT
    kafka_version: str = DEFAULT_KAFKA_VERSION
    kafka_heap: str = DEFAULT_KAFKA_HEAP
    external_kafka: str | None = None
    external_database_url: str | None = None
    external_redis_url: str | None = None
    repo_root: Path = field(default_factory=find_repo_root)

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir).resolve())
        checks = [
            ("GRIM_STACK_KAFKA_PORT", self.kafka_port, 65534),  # the controller uses port+1
            ("GRIM_STACK_POSTGRES_PORT", self.postgres_port, 65535),
            ("GRIM_STACK_REDIS_PORT", self.redis_port, 65535),
        ]
        for name, port, highest in checks:
            if not 1 <= port <= highest:
                raise StackError(f"{name}={port} is out of range (1-{highest})")
        used = [self.kafka_port, self.kafka_controller_port, self.postgres_port, self.redis_port]
        if len(set(used)) != len(used):
            raise StackError(
                f"stack ports overlap: kafka {self.kafka_port} (controller "
                f"{self.kafka_controller_port}), postgres {self.postgres_port}, "
                f"redis {self.redis_port}"
            )
        if not _HEAP_RE.match(self.kafka_heap):
            raise StackError(
                f"GRIM_STACK_KAFKA_HEAP={self.kafka_heap!r} is not a JVM size such as 768m or 1g"
            )
        if not _VERSION_RE.match(self.kafka_version):
            raise StackError(f"GRIM_STACK_KAFKA_VERSION={self.kafka_version!r} is not a version")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ
        root = find_repo_root()
        run_dir = _optional(env, "GRIM_RUN_DIR")
        return cls(
            run_dir=Path(run_dir).expanduser() if run_dir else root / ".run",
            kafka_port=_port(env, "GRIM_STACK_KAFKA_PORT", DEFAULT_KAFKA_PORT),
            postgres_port=_port(env, "GRIM_STACK_POSTGRES_PORT", DEFAULT_POSTGRES_PORT),
            redis_port=_port(env, "GRIM_STACK_REDIS_PORT", DEFAULT_REDIS_PORT),
            kafka_version=_optional(env, "GRIM_STACK_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION,
            kafka_heap=_optional(env, "GRIM_STACK_KAFKA_HEAP") or DEFAULT_KAFKA_HEAP,
            external_kafka=_optional(env, "GRIM_KAFKA_BOOTSTRAP"),
            external_database_url=_optional(env, "GRIM_DATABASE_URL"),
            external_redis_url=_optional(env, "GRIM_REDIS_URL"),
            repo_root=root,
        )

    @property
    def kafka_controller_port(self) -> int:
        return self.kafka_port + 1

    def local_kafka_bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.kafka_port}"

    def local_database_url(self) -> str:
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@{LOOPBACK}:{self.postgres_port}/{PG_DATABASE}"

    def local_redis_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.redis_port}/0"

    @property
    def kafka_dir(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def postgres_dir(self) -> Path:
        return self.run_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.run_dir / "redis"

    @property
    def kafka_pom(self) -> Path:
        return self.repo_root / "deploy" / "kafka" / "pom.xml"

    @property
    def kafka_log4j_config(self) -> Path:
        return self.repo_root / "deploy" / "kafka" / "log4j2.properties"
