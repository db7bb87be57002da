"""A local append-only spool: the last resort when Kafka and PostgreSQL are both unreachable.

One JSON line per click, fsynced before the visitor is answered. The drainer
renames the active file before reading it, so appends never race a drain; a
file is deleted only after every line in it was made durable elsewhere
(outbox or Kafka). A crash mid-drain republishes the file: consumers
deduplicate by event_id. Give each process its own directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from .metrics import SPOOL_BACKLOG

log = logging.getLogger(__name__)

ACTIVE = "clicks.jsonl"


@dataclass(frozen=True)
class SpooledRecord:
    topic: str
    key: bytes | None
    value: bytes


class Spool:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = asyncio.Lock()
        self.backlog = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.backlog = sum(len(self._read(p)) for p in self._files())
        SPOOL_BACKLOG.set(self.backlog)

    async def append(self, record: SpooledRecord) -> None:
        line = orjson.dumps({
            "topic": record.topic,
            "key": record.key.decode() if record.key is not None else None,
            "value": record.value.decode(),
        }) + b"\n"
        async with self._lock:
            await asyncio.to_thread(self._write, line)
            self.backlog += 1
            SPOOL_BACKLOG.set(self.backlog)

    def _write(self, line: bytes) -> None:
        fd = os.open(self.directory / ACTIVE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _files(self) -> list[Path]:
        draining = sorted(self.directory.glob("clicks-*.draining"))
        active = self.directory / ACTIVE
        return draining + ([active] if active.exists() else [])

    @staticmethod
    def _read(path: Path) -> list[SpooledRecord]:
        records = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
                key = data["key"]
                records.append(SpooledRecord(
                    data["topic"], key.encode() if key is not None else None,
                    data["value"].encode(),
                ))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                # Only a write torn by a crash can be garbled; it was never acknowledged.
                log.error("spool %s line %d unreadable, skipped", path, number)
        return records

    async def take(self) -> list[tuple[Path, list[SpooledRecord]]]:
        """Freeze the active file and return every file waiting to be drained."""
        async with self._lock:
            active = self.directory / ACTIVE
            if active.exists():
                active.rename(self.directory / f"clicks-{time.time_ns()}.draining")
        return [(p, self._read(p)) for p in sorted(self.directory.glob("clicks-*.draining"))]

    def done(self, path: Path, count: int) -> None:
        path.unlink()
        self.backlog = max(0, self.backlog - count)
        SPOOL_BACKLOG.set(self.backlog)
