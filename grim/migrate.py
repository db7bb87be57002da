"""A small, strict migrator: versioned SQL files, one Postgres schema per owner.

Each owner keeps `migrations/NNNN_name.sql` next to its code. A file is applied
once, in its own transaction, under an advisory lock (several processes may
start at once); an applied file whose text changed is an error, not a silent
re-run.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# Owner -> package holding its migrations/ folder. Order matters: config first.
OWNERS: dict[str, str] = {
    "outbox": "grim",
    "config": "grim.config",
    "redirect": "grim_redirect",
    "bot_gateway": "grim_bot_gateway",
    "payments": "grim_payments",
    "projector": "grim_projector",
    "dispatcher": "grim_dispatcher",
}
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x6772696D  # "grim"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    owner: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(owners: dict[str, str] = OWNERS) -> list[Migration]:
    found = []
    for owner, package in owners.items():
        module = importlib.import_module(package)
        folder = Path(module.__file__ or "").parent / "migrations"
        if not folder.is_dir():
            continue
        versions: set[int] = set()
        for path in sorted(folder.glob("*.sql")):
            match = _FILE.match(path.name)
            if not match:
                raise MigrationError(f"{path}: name must look like 0001_description.sql")
            version = int(match.group(1))
            if version in versions:
                raise MigrationError(f"{path}: version {version} of {owner} is used twice")
            versions.add(version)
            found.append(Migration(owner, version, match.group(2), path.read_text()))
    return found


async def applied(conn: asyncpg.Connection) -> dict[tuple[str, int], str]:
    await conn.execute(
        """
        CREATE SCHEMA IF NOT EXISTS grim_meta;
        CREATE TABLE IF NOT EXISTS grim_meta.schema_migrations (
            owner text NOT NULL,
            version integer NOT NULL,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (owner, version)
        )
        """
    )
    rows = await conn.fetch("SELECT owner, version, checksum FROM grim_meta.schema_migrations")
    return {(r["owner"], r["version"]): r["checksum"] for r in rows}


async def migrate(dsn: str, owners: dict[str, str] = OWNERS) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now."""
    migrations = discover(owners)
    conn = await asyncpg.connect(dsn)
    done: list[Migration] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        try:
            state = await applied(conn)
            for m in migrations:
                known = state.get((m.owner, m.version))
                if known is not None:
                    if known != m.checksum:
                        raise MigrationError(
                            f"{m.owner} migration {m.version:04d}_{m.name} was changed after "
                            "it was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{m.owner}"')
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO grim_meta.schema_migrations (owner, version, name, checksum)"
                        " VALUES ($1, $2, $3, $4)",
                        m.owner, m.version, m.name, m.checksum,
                    )
                done.append(m)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    finally:
        await conn.close()
    return done
