"""Batch handlers and Faust tables: each touched key written once per batch."""

from __future__ import annotations

from typing import Any

from grim_projector.batch_states import BatchStates
from grim_projector.handlers import Tables

from .funnels import build
from .sim import FakeEvent, Message, Simulation


class CountingTable(dict):
    """A dict table that counts writes (each is a changelog record in Faust)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def test_a_touched_key_is_written_once_even_unchanged_and_empty_new_keys_not_at_all() -> None:
    table = CountingTable()
    table["seen"] = {"n": 1}
    table.writes.clear()
    event = FakeEvent(Message("t", b"k", b"{}"))
    batch = BatchStates(table, empty={"n": 0})
    for key in ("seen", "new", "empty", "new"):
        state = batch.get(key, event) or {"n": 0}
        batch.put(key, {"n": state["n"] + (key == "new")}, event)
    assert dict(batch.write()) == {"seen": {"n": 1}, "new": {"n": 2}}
    assert sorted(table.writes) == ["new", "seen"]


async def test_a_redelivered_batch_rewrites_the_same_state_and_emits_nothing() -> None:
    events, _ = build(20, 2, seed=4)
    sim = Simulation()
    sim.tables = sim.handlers.tables = Tables(bot_users=CountingTable(), journeys=CountingTable())
    messages = [sim.message(e) for e in events]
    await sim.feed(messages)
    before = dict(sim.tables.bot_users), dict(sim.tables.journeys)
    sim.tables.bot_users.writes.clear()
    sim.tables.journeys.writes.clear()
    sent = len(sim.sent)

    await sim.feed(messages)  # a crash before the offsets were committed

    # The changelog gets the values again (the local store may have been ahead of it)...
    assert set(sim.tables.bot_users.writes) == set(before[0])
    assert (dict(sim.tables.bot_users), dict(sim.tables.journeys)) == before
    # ...and nothing is emitted again.
    assert len(sim.sent) == sent
