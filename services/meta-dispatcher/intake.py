"""The first half of handling a fetched batch: decode it and drop what is already decided.

It runs while the previous batch is still being delivered (see loop.py), so its
only effect is dead-lettering undecodable records, and it yields to the event
loop between slices so that the requests in flight keep moving meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from grim_schemas import decode
from grim_schemas.events import ConversionRequested

from grim.kafka import EventPublisher, decode_batch

from . import dlq
from .delivery import Key
from .ledger import Ledger
from .metrics import DEDUPLICATED

# Records decoded between two yields to the event loop (~5 ms of CPU).
SLICE = 500


@dataclass
class Intake:
    """A decoded batch: one conversion per key, minus what Meta accepted or the DLQ holds."""

    pending: dict[Key, ConversionRequested]
    keys: frozenset[Key]
    attempts: dict[int, int] = field(default_factory=dict)
    operator_retries: set[Key] = field(default_factory=set)
    since: float = 0.0


def _decode_conversion(raw: bytes) -> ConversionRequested:
    return decode(raw, ConversionRequested)


async def read_batch(records: list[ConsumerRecord], ledger: Ledger, publisher: EventPublisher,
                     group: str) -> Intake | None:
    """Decode `records` (dead-lettering the undecodable) and look their keys up once."""
    decoded: list[tuple[ConsumerRecord, ConversionRequested]] = []
    for start in range(0, len(records), SLICE):
        if start:
            await asyncio.sleep(0)
        decoded += await decode_batch(records[start:start + SLICE], _decode_conversion,
                                      publisher, group)
    if not decoded:
        return None
    intake = Intake({}, frozenset())
    for rec, conv in decoded:
        key = (conv.pixel_id, conv.event_name, conv.event_id)
        if rec.headers:
            # Only records of the retry topic (or re-published by `grim dlq retry`) have any.
            intake.attempts[id(conv)] = dlq.read_headers(rec.headers)[1]
            if dlq.is_operator_retry(rec.headers):
                intake.operator_retries.add(key)
        if key in intake.pending:
            DEDUPLICATED.labels("batch").inc()
            continue
        intake.pending[key] = conv
    intake.keys = frozenset(intake.pending)
    intake.since = min(c.occurred_at for _, c in decoded).timestamp()
    await drop_decided(intake, intake.pending, ledger)
    return intake


async def drop_decided(intake: Intake, keys: Iterable[Key], ledger: Ledger) -> None:
    """Remove from `intake.pending` those of `keys` that Meta accepted or the DLQ holds."""
    done, parked = await ledger.known_among(keys)
    if done:
        DEDUPLICATED.labels("ledger").inc(len(done))
    # A replay must not re-send what the operator has not released from the DLQ yet.
    parked -= intake.operator_retries
    if parked:
        DEDUPLICATED.labels("dlq").inc(len(parked))
    for key in done | parked:
        intake.pending.pop(key, None)
