"""Batch handlers behind the two Faust agents: decode, call the pure steps, apply effects.

Effects first, state last: a batch's outputs (StageAttributed records, projection
rows, conversions) are acknowledged by Kafka and committed in Postgres before
the new table values are assigned, and offsets are acknowledged after that. A
crash at any point therefore either replays a batch whose effects may already
exist (upserts and event-id keyed conversions make that harmless) or finds the
facts in state and skips them: nothing is lost, nothing is emitted twice in effect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import EventT
from grim_schemas import MalformedEvent, StageAttributed, decode
from grim_schemas.events import (
    BotStarted,
    ClickCookiesReported,
    ClickRecorded,
    DeliveryOpened,
    PaymentConfirmed,
    PaymentExpired,
    PaymentRefunded,
    PixGenerated,
)
from grim_schemas.topics import key_for

from . import bot_users, journeys, metrics
from .batch_states import BatchStates
from .pg_projection import PgProjection
from .rules import Rule
from .settings import ProjectorSettings
from .timeutil import iso_to_ms, ms_to_iso, now_ms

log = logging.getLogger(__name__)

BOT_USER_STAGES = {"start": BotStarted, "pix-generated": PixGenerated, "paid": PaymentConfirmed,
                   "refunded": PaymentRefunded, "expired": PaymentExpired,
                   "delivered": DeliveryOpened}
TOKEN_STAGES = {"click": ClickRecorded, "click-cookies": ClickCookiesReported}
Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]


@dataclass
class Outputs:
    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)


class Tables:
    """The two Faust tables, behind a dict-like view the handlers can fake in tests."""

    def __init__(self, bot_users: Any, journeys: Any) -> None:
        self.bot_users = bot_users
        self.journeys = journeys


class ProjectorHandlers:
    def __init__(self, settings: ProjectorSettings, tables: Tables, rule: Rule,
                 projection: Callable[[], Awaitable[PgProjection]], send: Send) -> None:
        self.settings = settings
        self.tables = tables
        self.rule = rule
        self.projection = projection
        self.send = send
        self.app_version = settings.app_id()
        self.stage_of_topic = {settings.topic(s): s for s in (*BOT_USER_STAGES, *TOKEN_STAGES)}
        self.attributed_topic = settings.attributed_topic()
        self.ticks_topic = settings.ticks_topic()
        self.conversions_topic = settings.topic("conversions")
        self.pending_keys: dict[str, int] = {}  # bot user -> first-seen ms of its oldest
        self.pending_counts: dict[str, int] = {}  # bot user -> facts waiting
        self._last_decided_ms = 0
        self._from_ms = (iso_to_ms(settings.projector_replay_from)
                         if settings.projector_replay_from else None)

    # ---- step one: per bot user -------------------------------------------------
    async def bot_user_batch(self, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        timeout_ms = int(self.settings.projector_pending_timeout_s * 1000)
        now = now_ms()
        batch = BatchStates(self.tables.bot_users)
        out: list[bot_users.Assignment] = []
        seen: list[str] = []
        duplicates: list[str] = []
        for event in events:
            topic = event.message.topic
            if topic == self.ticks_topic:
                key = _key_text(event)
                state = batch.get(key, event)
                if state is None:
                    continue
                state, assigned = bot_users.expire(state, rule=self.rule, now_ms=now,
                                                   timeout_ms=timeout_ms)
            else:
                stage = self.stage_of_topic[topic]
                fact = await self._decode(event, BOT_USER_STAGES[stage])
                if fact is None or self._before_window(fact, stage):
                    continue
                key = fact.bot_user_key
                state = batch.get(key, event) or bot_users.new_state()
                duplicate = bot_users.has_fact(state, fact.event_id)
                state, assigned = bot_users.add_fact(
                    state, fact.type, _as_dict(event), rule=self.rule, now_ms=now,
                    timeout_ms=timeout_ms)
                (duplicates if duplicate else seen).append(fact.type)
            batch.put(key, state, event)
            out.extend(assigned)
        futures = []
        for a in out:
            key = (a.token or f"organic:{a.bot_id}").encode()
            futures.append(await self.send(self.attributed_topic, key,
                                           orjson.dumps(self._attributed(a))))
        for fut in futures:
            await fut
        _count(metrics.EVENTS, seen)
        _count(metrics.DUPLICATES, duplicates)
        _count(metrics.ATTRIBUTIONS, [a.kind for a in out])
        for key, state in batch.write():
            self._index_pending(key, state)
        metrics.PENDING.set(sum(self.pending_counts.values()))
        metrics.BATCH_SECONDS.labels("bot_user").observe(time.perf_counter() - started)

    def due_ticks(self, now: int) -> list[str]:
        """Keys holding a fact that has waited longer than the pending timeout."""
        timeout_ms = int(self.settings.projector_pending_timeout_s * 1000)
        return [k for k, since in self.pending_keys.items() if now - since >= timeout_ms]

    def rebuild_pending_index(self) -> None:
        """After a restart the index is empty: rebuild it from the recovered table."""
        for key, state in self.tables.bot_users.items():
            if state:
                self._index_pending(key, state)
        metrics.PENDING.set(sum(self.pending_counts.values()))

    def _index_pending(self, key: str, state: Any) -> None:
        oldest = bot_users.oldest_pending_ms(state)
        if oldest is None:
            self.pending_keys.pop(key, None)
            self.pending_counts.pop(key, None)
        else:
            self.pending_keys[key] = oldest
            self.pending_counts[key] = bot_users.pending_count(state)

    def _decided_at(self) -> int:
        # Strictly increasing: when a fact is re-decided, its two decisions travel through
        # different partitions and the projection keeps the later one by this time.
        self._last_decided_ms = max(now_ms(), self._last_decided_ms + 1)
        return self._last_decided_ms

    def _attributed(self, a: bot_users.Assignment) -> dict[str, Any]:
        """A StageAttributed record as its JSON dict: built directly because this is the
        hot path (a unit test checks it validates against the model)."""
        return {
            "event_id": journeys.attribution_event_id(a.source_event_id, a.kind, a.token),
            "type": "attributed", "schema_version": 1,
            "occurred_at": ms_to_iso(self._decided_at()), "producer": "projector",
            "stage": a.stage, "source_event_id": a.source_event_id, "tracking_token": a.token,
            "bot_id": a.bot_id, "telegram_user_id": a.telegram_user_id,
            "rule_version": self.settings.projector_rule_version, "fact": a.fact,
        }

    def _before_window(self, fact: Any, stage: str) -> bool:
        if self._from_ms is None:
            return False
        at = iso_to_ms(fact.occurred_at)
        # A replay from T still needs the /starts of the click window before T.
        margin = 7 * 24 * 3600 * 1000 if stage == "start" else 0
        return at < self._from_ms - margin

    # ---- step two: per token ----------------------------------------------------
    async def token_batch(self, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        ctx = journeys.Context(
            rule_version=self.settings.projector_rule_version, projection_version=self.app_version,
            now_ms=now_ms(), wait_timeout_ms=int(self.settings.projector_wait_timeout_s * 1000))
        batch = BatchStates(self.tables.journeys, empty=journeys.new_state())
        fx = journeys.Effects()
        seen: list[str] = []
        for event in events:
            topic = event.message.topic
            if topic == self.attributed_topic:
                att = await self._decode(event, StageAttributed)
                if att is None:
                    continue
                key, data = key_for(att).decode(), _as_dict(event)
                handler = journeys.on_attributed
            else:
                stage = self.stage_of_topic[topic]
                fact = await self._decode(event, TOKEN_STAGES[stage])
                if fact is None or self._before_window(fact, "start"):
                    continue
                key, data = fact.tracking_token, _as_dict(event)
                handler = journeys.on_click if stage == "click" else journeys.on_cookies
                seen.append(fact.type)
            state, effects = handler(batch.get(key, event) or journeys.new_state(), data, ctx)
            fx.extend(effects)
            batch.put(key, state, event)
        projection = await self.projection()
        # Both effects are idempotent and both are durable before the state moves on;
        # neither needs the other, so their round trips overlap.
        effects = [self._write(projection, fx)]
        if self.settings.projector_emit_conversions:
            effects.append(self._publish(fx.conversions, fx.payloads()))
        await asyncio.gather(*effects)
        _count(metrics.EVENTS, seen)
        _count(metrics.CONVERSIONS, [c["event_name"] for c in fx.conversions])
        metrics.WAITING_DROPPED.inc(fx.dropped_waiting)
        batch.write()
        metrics.BATCH_SECONDS.labels("token").observe(time.perf_counter() - started)

    # ---- shared -----------------------------------------------------------------
    async def _write(self, projection: PgProjection, fx: journeys.Effects) -> None:
        with metrics.WRITE_SECONDS.time():
            await projection.write(fx)

    async def _publish(self, events: Sequence[Any], payloads: Sequence[bytes]) -> None:
        futures = []
        topic = self.conversions_topic
        for conv, payload in zip(events, payloads, strict=True):
            # The registry's key of a conversion: its token (every conversion has one).
            futures.append(await self.send(topic, conv["tracking_token"].encode(), payload))
        for fut in futures:
            await fut

    async def _decode(self, event: EventT, model: type[Any]) -> Any:
        raw = event.message.value or b""
        try:
            # Rust-side parsing; codec.decode (slower) only to word the reason of a reject.
            return model.model_validate_json(raw)
        except ValueError:
            pass
        try:
            return decode(raw, model)
        except MalformedEvent as exc:
            metrics.MALFORMED.labels(event.message.topic).inc()
            entry = {"source_topic": event.message.topic, "partition": event.message.partition,
                     "offset": event.message.offset, "group": self.app_version,
                     "reason": str(exc), "value": raw.decode("utf-8", "replace")}
            log.error("dead-lettered %s[%s]@%s: %s", event.message.topic,
                      event.message.partition, event.message.offset, exc)
            fut = await self.send(self.settings.topic("dead-letters"),
                                  event.message.topic.encode(), orjson.dumps(entry))
            await fut
            return None


def _count(counter: Any, labels: list[str]) -> None:
    # Once per label and batch: a labelled child lookup per event is measurable here.
    for label, n in Counter(labels).items():
        counter.labels(label).inc(n)


def _as_dict(event: EventT) -> dict[str, Any]:
    """The record's JSON as a dict, once it validated (facts are kept as published)."""
    return orjson.loads(event.message.value)  # type: ignore[no-any-return]


def _key_text(event: EventT) -> str:
    key = event.message.key
    return key.decode() if isinstance(key, bytes) else str(key)
