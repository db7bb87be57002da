"""Faust table access for batch handlers: reads and writes in the right partition's
context, each key read once and written once per batch."""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event  # the context Faust tables read the partition from
from faust.types import EventT


def lookup(table: Any, key: str, event: EventT) -> Any:
    """`table.get(key)` in the context of a record of the key's partition: the RocksDB
    store then opens that partition's database first instead of trying each one."""
    token = _current_event.set(weakref.ref(event))
    try:
        return table.get(key)
    finally:
        _current_event.reset(token)


def assign(table: Any, key: str, value: Any, event: EventT | None) -> None:
    """Set `table[key]` as if while processing `event` (a record of the key's partition).

    Faust files a table write under the partition of the event being processed; a
    batch mixes partitions, so each key is written in the context of its own record.
    """
    if event is None:
        table[key] = value
        return
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


class BatchStates:
    """The table values of one batch: each key read once and written once, at the end.

    A touched key is written even when its value did not change: after a crash the
    local RocksDB store may hold a value whose changelog record never reached Kafka,
    and the redelivered batch is what puts it there. Only a key that has no value and
    would get the empty one is left out (absent already means empty).
    """

    def __init__(self, table: Any, empty: Any = None) -> None:
        self.table = table
        self.empty = empty  # what a missing key stands for
        self.states: dict[str, Any] = {}
        self.stored: dict[str, Any] = {}
        self.last: dict[str, EventT] = {}

    def get(self, key: str, event: EventT) -> Any:
        if key not in self.states:
            self.stored[key] = self.states[key] = lookup(self.table, key, event)
        return self.states[key]

    def put(self, key: str, state: Any, event: EventT) -> None:
        self.states[key] = state
        self.last[key] = event

    def write(self) -> list[tuple[str, Any]]:
        """Assign the values; returns what was written."""
        changed = [(k, self.states[k]) for k in self.last
                   if self.stored[k] is not None or self.states[k] != self.empty]
        for key, state in changed:
            assign(self.table, key, state, self.last[key])
        return changed
