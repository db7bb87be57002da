"""Drive the real batch handlers in memory: dict tables, a list as Kafka, a dict as Postgres.

Tests choose the arrival order (and batch boundaries) and check the final projection.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from grim_projector.handlers import ProjectorHandlers, Tables
from grim_projector.journeys import Effects
from grim_projector.rules import rule_for
from grim_projector.settings import ProjectorSettings
from grim_schemas import Event, encode
from grim_schemas.topics import key_for, topic_for


@dataclass
class Message:
    topic: str
    key: bytes | None
    value: bytes
    partition: int = 0
    offset: int = 0


class FakeEvent:
    def __init__(self, message: Message) -> None:
        self.message = message
        self.key = message.key
        self.value = message.value


@dataclass
class MemoryProjection:
    """Folds effects like the SQL upserts do (newest decision wins, stage columns merge)."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversions: dict[str, Any] = field(default_factory=dict)

    async def write(self, fx: Effects) -> None:
        for row in fx.token_rows:
            self.tokens.setdefault(row["tracking_token"], {}).update(row)
        for row in fx.cookie_rows:
            cur = self.tokens.setdefault(row["tracking_token"], {})
            for k in ("cookie_fbc", "cookie_fbp"):
                cur[k] = row[k] or cur.get(k)
        for row in fx.fact_rows:
            cur = self.facts.get(row["source_event_id"])
            if cur is None or row["decided_at"] >= cur["decided_at"]:
                self.facts[row["source_event_id"]] = row
        for row in fx.payment_rows:
            cur = self.payments.setdefault(row["payment_id"], dict(row))
            newer = row["decided_at"] >= cur["decided_at"]
            for k, v in row.items():
                if k in ("tracking_token", "attribution", "decided_at"):
                    if newer:
                        cur[k] = v
                elif v is not None:
                    cur[k] = v
        for conv in fx.conversions:
            self.conversions.setdefault(conv["event_id"], conv)

    def summary(self) -> dict[str, Any]:
        """Everything but decision times (those differ between runs by design)."""
        return {
            "facts": {k: (v["tracking_token"], v["attribution"]) for k, v in self.facts.items()},
            "payments": {k: {c: v[c] for c in sorted(v) if c != "decided_at"}
                         for k, v in self.payments.items()},
            "tokens": self.tokens,
            "conversions": sorted((c["event_name"], c["event_id"])
                                  for c in self.conversions.values()),
        }


class Simulation:
    def __init__(self, rule_version: int = 1, **overrides: Any) -> None:
        self.settings = ProjectorSettings(projector_rule_version=rule_version,
                                          projector_projection="sim", **overrides)
        self.tables = Tables(bot_users={}, journeys={})
        self.projection = MemoryProjection()
        self.sent: list[Message] = []
        self.handlers = ProjectorHandlers(self.settings, self.tables, rule_for(rule_version),
                                          self._projection, self._send)
        self.attributed_queue: list[Message] = []
        self._attributed_topic = self.settings.attributed_topic()

    async def _projection(self) -> MemoryProjection:
        return self.projection

    async def _send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        message = Message(topic, key, value)
        self.sent.append(message)
        if topic == self._attributed_topic:
            self.attributed_queue.append(message)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def message(self, event: Event) -> Message:
        return Message(topic_for(event, self.settings.namespace), key_for(event), encode(event))

    async def feed(self, messages: list[Message], rng: random.Random | None = None) -> None:
        """Deliver `messages` in order, interleaving the step-one outputs at random points."""
        rng = rng or random.Random(0)
        step1_topics = {self.settings.topic(s) for s in
                        ("start", "pix-generated", "paid", "refunded", "expired", "delivered")}
        step1_topics.add(self.settings.ticks_topic())
        inputs = list(messages)
        while inputs or self.attributed_queue:
            take_attributed = self.attributed_queue and (not inputs or rng.random() < 0.4)
            source = self.attributed_queue if take_attributed else inputs
            n = rng.randint(1, 4)
            batch, source[:n] = source[:n], []
            for topics, handler in ((step1_topics, self.handlers.bot_user_batch),
                                    (None, self.handlers.token_batch)):
                part = [FakeEvent(m) for m in batch
                        if (m.topic in topics if topics else m.topic not in step1_topics)]
                if part:
                    await handler(part)

    def conversions(self) -> list[Any]:
        from grim_schemas import ConversionRequested, decode

        return [decode(m.value, ConversionRequested) for m in self.sent
                if m.topic == self.settings.topic("conversions")]
