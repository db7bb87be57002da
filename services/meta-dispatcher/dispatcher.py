"""The handler of a fetched batch: dedup, look up pixels, build, deliver, make outcomes durable.

It returns only once every record of the batch is decided durably: accepted and
in the ledger, parked in the DLQ, re-queued on the retry topic, or skipped
because the pixel disables its event name. Only then does the loop commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import orjson
from aiokafka import ConsumerRecord
from grim_schemas import encode
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested

from grim.config.pixels import PixelCredentials
from grim.kafka import EventPublisher

from . import dlq
from .classify import Outcome, Verdict
from .delivery import Deliverer, Item, Key, Report
from .graph_client import GraphClient
from .intake import Intake, drop_decided, read_batch
from .ledger import Ledger
from .metrics import (
    BATCH_SIZE,
    CLAMPED,
    DLQ_SIZE,
    EVENTS_ACCEPTED,
    EVENTS_FAILED,
    EVENTS_SENT,
    EVENTS_SKIPPED,
    LEDGER_LAG,
    RETRIES,
    SOURCE_FALLBACK,
)
from .payload import Refusal, TimeWindow, build_event, chunks, order_for_sending
from .pixel_cache import PixelCache
from .settings import DispatcherSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Parked:
    conversion: ConversionRequested
    reason: str
    kind: str
    outcome: Outcome | None = None


class Dispatcher:
    def __init__(
        self,
        settings: DispatcherSettings,
        *,
        ledger: Ledger,
        pixels: PixelCache,
        graph: GraphClient,
        publisher: EventPublisher,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.pixels = pixels
        self.graph = graph
        self.publisher = publisher
        self.group = settings.group(settings.dispatcher_group_name)
        self.dlq_topic = settings.topic("capi-dlq")
        self.retry_topic = settings.topic("capi-retry")
        self._slots = asyncio.Semaphore(settings.dispatcher_concurrency)
        self._since: dict[int, float] = {}
        self._last_keys: frozenset[Key] = frozenset()

    async def requeue(self, records: list[ConsumerRecord]) -> None:
        """Move retry records that are not due yet to the tail of their partition."""
        producer = self.publisher.producer
        pending = [
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers or ()))
            for r in records
        ]
        for fut in pending:
            await fut

    @property
    def in_flight_since(self) -> float | None:
        """When the oldest conversion taken in but not yet decided was requested."""
        return min(self._since.values(), default=None)

    async def handle(self, records: list[ConsumerRecord]) -> None:
        """Take a batch in and deliver it (what the loop does, without the overlap)."""
        intake = await self.take_in(records)
        if intake is not None:
            await self.deliver(intake)

    async def take_in(self, records: list[ConsumerRecord]) -> Intake | None:
        """Decode and deduplicate a batch; safe to run while the previous one is delivered."""
        intake = await read_batch(records, self.ledger, self.publisher, self.group)
        if intake is not None:
            self._since[id(intake)] = intake.since
        return intake

    def discard(self, intake: Intake) -> None:
        """Forget a batch taken in but dropped (it is fetched again after a failure)."""
        self._since.pop(id(intake), None)

    async def deliver(self, intake: Intake) -> None:
        """Decide every pending conversion durably; the loop runs one delivery at a time."""
        try:
            # Keys also in the batch delivered just before were looked up before that batch
            # wrote its outcome: look again, so a duplicate across batches is not sent twice.
            overlap = intake.keys & self._last_keys
            if overlap:
                await drop_decided(intake, overlap, self.ledger)
            await self._deliver(intake)
            self._last_keys = intake.keys
        finally:
            self._since.pop(id(intake), None)

    async def _deliver(self, intake: Intake) -> None:
        attempts = intake.attempts
        by_pixel: dict[str, list[ConversionRequested]] = defaultdict(list)
        for conv in intake.pending.values():
            by_pixel[conv.pixel_id].append(conv)

        parked: list[Parked] = []
        work = []
        for pixel_id, convs in by_pixel.items():
            creds = await self.pixels.get(pixel_id)
            refusal = _pixel_refusal(pixel_id, creds)
            if refusal is not None:
                parked += [Parked(c, refusal[1], refusal[0]) for c in convs]
                continue
            assert creds is not None
            work.append(asyncio.create_task(
                self._deliver_pixel(pixel_id, creds, convs, attempts, parked)))
        reports = await _all(work)

        later: list[tuple[Item, Outcome]] = []
        for pixel_id, report in reports:
            if report.token_refused is not None:
                await self.pixels.flag(pixel_id, f"Graph refused the access token: "
                                                 f"{report.token_refused.reason}")
            for item, outcome in report.dead:
                parked.append(Parked(item.conversion, outcome.reason, outcome.verdict.value,
                                     outcome))
            later += report.later
        await self._effects(parked, later)

    def _prepare(
        self,
        pixel_id: str,
        creds: PixelCredentials,
        convs: list[ConversionRequested],
        attempts: dict[int, int],
        parked: list[Parked],
    ) -> list[Item]:
        window = TimeWindow.at(
            utcnow(),
            future_skew=timedelta(seconds=self.settings.dispatcher_future_skew_seconds),
            max_future=timedelta(seconds=self.settings.dispatcher_max_future_seconds),
        )
        enabled, source = creds.pixel.enabled_events, creds.pixel.action_source
        items = []
        for conv in convs:
            if conv.event_name not in enabled:
                EVENTS_SKIPPED.labels(pixel_id, conv.event_name).inc()
                continue
            built = build_event(conv, pixel_source=source, window=window)
            if isinstance(built, Refusal):
                parked.append(Parked(conv, built.reason, built.kind))
                continue
            if built.clamped:
                CLAMPED.inc()
            if built.fallback_source:
                SOURCE_FALLBACK.labels(conv.event_name).inc()
            items.append(Item(conv, built.event, attempts.get(id(conv), 0)))
        return items

    async def _deliver_pixel(
        self,
        pixel_id: str,
        creds: PixelCredentials,
        convs: list[ConversionRequested],
        attempts: dict[int, int],
        parked: list[Parked],
    ) -> tuple[str, Report]:
        token, test_code = creds.access_token or "", creds.pixel.test_event_code

        async def send(events: list[dict]) -> Outcome:  # type: ignore[type-arg]
            async with self._slots:
                BATCH_SIZE.observe(len(events))
                for name, n in Counter(e["event_name"] for e in events).items():
                    EVENTS_SENT.labels(pixel_id, name).inc(n)
                outcome = await self.graph.send_events(pixel_id, token, events, test_code)
                if outcome.verdict is Verdict.ACCEPTED:
                    # Recorded before the slot is released: a crash re-sends at most the
                    # requests in flight (Meta drops them as duplicates by event_id).
                    await self.ledger.record(
                        pixel_id, [(e["event_name"], e["event_id"]) for e in events],
                        outcome.events_received or 0, outcome.fbtrace_id)
                return outcome

        deliverer = Deliverer(
            send,
            attempts=self.settings.dispatcher_attempts,
            backoff_base=self.settings.dispatcher_backoff_base_seconds,
            backoff_cap=self.settings.dispatcher_backoff_cap_seconds,
        )
        tasks = []
        ordered = order_for_sending(convs, lambda c: c.event_name)
        for part in chunks(ordered, self.settings.dispatcher_batch_max):
            items = self._prepare(pixel_id, creds, part, attempts, parked)
            if items:
                tasks.append(asyncio.create_task(deliverer.deliver(items)))
            # Let the requests built so far go out while the next chunk is prepared.
            await asyncio.sleep(0)
        parts = await _all(tasks)
        report = Report()
        for part in parts:
            report.merge(part)
        self._count_accepted(report.accepted)
        RETRIES.labels("in_process").inc(report.retries)
        return pixel_id, report

    def _count_accepted(self, accepted: list[tuple[Item, Outcome]]) -> None:
        now = time.time()
        by_label: Counter[tuple[str, str]] = Counter()
        for item, _ in accepted:
            conv = item.conversion
            by_label[(conv.pixel_id, conv.event_name)] += 1
            LEDGER_LAG.observe(max(0.0, now - conv.occurred_at.timestamp()))
        for (pixel_id, name), n in by_label.items():
            EVENTS_ACCEPTED.labels(pixel_id, name).inc(n)

    async def _effects(self, parked: list[Parked], later: list[tuple[Item, Outcome]]) -> None:
        producer = self.publisher.producer
        pending = []
        entries = []
        for p in parked:
            entry = dlq.entry(p.conversion, reason=p.reason, kind=p.kind, outcome=p.outcome)
            entries.append(entry)
            pending.append(await producer.send(
                self.dlq_topic, orjson.dumps(entry), key=p.conversion.pixel_id.encode()))
            EVENTS_FAILED.labels(p.conversion.pixel_id, p.conversion.event_name, p.kind).inc()
            log.warning("parked %s: %s", p.conversion.event_id, p.reason,
                        extra={"pixel_id": p.conversion.pixel_id, "event_id":
                               p.conversion.event_id})
        for item, outcome in later:
            retry_number = item.attempt + 1
            delay = dlq.retry_delay(retry_number, self.settings.dispatcher_retry_delays_seconds)
            pending.append(await producer.send(
                self.retry_topic, encode(item.conversion), key=item.conversion.pixel_id.encode(),
                headers=dlq.retry_headers(retry_number, delay),
            ))
            RETRIES.labels("topic").inc()
            log.info("retry %s in %.0fs after %s", item.conversion.event_id, delay,
                     outcome.reason)
        for fut in pending:
            await fut
        if entries:
            await self.ledger.park(entries)
            DLQ_SIZE.set(await self.ledger.pending_dead_letters())


def _pixel_refusal(pixel_id: str, creds: PixelCredentials | None) -> tuple[str, str] | None:
    """(kind, reason) when no event of this pixel can be sent now."""
    if creds is None:
        return "unknown_pixel", f"pixel {pixel_id} is not configured"
    if creds.pixel.flagged_reason:
        return "pixel_flagged", f"pixel flagged: {creds.pixel.flagged_reason}"
    if not creds.access_token:
        return "no_access_token", f"pixel {pixel_id} has no access token"
    return None


async def _all(tasks: list[asyncio.Task[T]]) -> list[T]:
    """Like gather, but a failure cancels the siblings: the batch is retried as a whole,
    and no orphaned request keeps sending behind the loop's back."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
