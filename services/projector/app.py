"""The Faust app: topics, tables, agents, the pending-fact timer and web pages.

Built by `build_app` (never at import time) so tests and replays choose the
projection, rule version and namespace through settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View
from grim_schemas.topics import TOKEN_PARTITIONS, TOPICS
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics
from .batches import handle_or_exit
from .handlers import BOT_USER_STAGES, TOKEN_STAGES, ProjectorHandlers, Tables
from .pg_projection import PgProjection
from .rules import rule_for
from .settings import ProjectorSettings
from .timeutil import now_ms

log = logging.getLogger(__name__)


def durably(app: faust.App, handler: Callable[[Sequence[Any]], Awaitable[None]]
            ) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """The batch handler, then its table changelog writes acknowledged by Kafka.

    Table writes reach Kafka through Faust's producer buffer, and Faust's own flush
    before an offset commit gives up after 0.1 s with messages still buffered: a crash
    right after such a commit lost table state (facts then waited forever for a /start
    the table no longer held). The batch is acknowledged only after this returns.
    """

    async def run(events: Sequence[Any]) -> None:
        await handler(events)
        await drain_changelog(app)

    return run


async def drain_changelog(app: faust.App, poll: float = 0.002) -> None:
    buffer = app.producer.buffer
    queue = buffer.pending
    # Idle means nothing queued and the sender task parked waiting for the next
    # message, i.e. the last one popped was already handed to the Kafka client.
    while not (queue.empty() and queue._getters):  # Faust keeps no public idle state
        await asyncio.sleep(poll)
    await app.producer.flush()


def build_app(settings: ProjectorSettings,
              projection: Callable[[], Awaitable[PgProjection]]) -> tuple[faust.App, ProjectorHandlers]:
    rule = rule_for(settings.projector_rule_version)
    sizes = {TOPICS[s].partitions for s in (*BOT_USER_STAGES, *TOKEN_STAGES, "attributed")}
    sizes |= {spec.partitions for spec in settings.internal_topics()}
    if sizes != {TOKEN_PARTITIONS}:
        raise RuntimeError(f"joined topics must share one partition count, found {sizes}")
    app = faust.App(
        settings.app_id(),
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store=table_store(settings.projector_store),
        # One directory per app id: a replay or a new rule version never opens another's state.
        datadir=str(Path(settings.projector_data_dir) / settings.app_id()),
        topic_partitions=TOKEN_PARTITIONS,
        topic_replication_factor=1,
        # Exactly-once has open bugs in faust-streaming (DESIGN.md): effects are idempotent.
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_port=settings.projector_port,
        web_bind=settings.projector_host,
        web_host=settings.projector_host,
        autodiscover=False,
        broker_session_timeout=settings.projector_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.projector_session_timeout_s / 3),
        broker_commit_every=1000,
        broker_commit_interval=0.5,
        stream_buffer_maxsize=8192,
        # A batch writes thousands of changelog, attributed and conversion records and then
        # waits for all of them (drain_changelog): a few ms of linger and batches far above
        # the 16 KiB default make that a handful of produce requests instead of hundreds.
        # 512 KiB stays under the broker's and the client's 1 MB request limits.
        producer_linger=0.005,
        producer_max_batch_size=1 << 19,
        logging_config=None,
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")

    ticks = topic(settings.ticks_topic())
    attributed = topic(settings.attributed_topic())
    bot_user_topics = [topic(settings.topic(s)) for s in BOT_USER_STAGES]
    token_topics = [topic(settings.topic(s)) for s in TOKEN_STAGES]

    tables = Tables(
        bot_users=app.Table("bot_user_to_facts", default=None, partitions=TOKEN_PARTITIONS,
                            key_type=str),
        journeys=app.Table("token_to_journey", default=None, partitions=TOKEN_PARTITIONS,
                           key_type=str),
    )

    async def send(topic_name: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        return await app.producer.send(topic_name, key, value, None, None, None)

    handlers = ProjectorHandlers(settings, tables, rule, projection, send)
    batch, within = settings.projector_batch_size, settings.projector_batch_within_s

    # Both agents read co-partitioned topics (same key, same partition count) with
    # concurrency 1, so each key's state is only ever touched by one coroutine.
    @app.agent(app.topic(*[t.get_topic_name() for t in (*bot_user_topics, ticks)],
                         key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw"), concurrency=1)
    async def attribute_bot_user_facts(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch, within=within):
            await handle_or_exit(durably(app, handlers.bot_user_batch), events)

    @app.agent(app.topic(*[t.get_topic_name() for t in (*token_topics, attributed)],
                         key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw"), concurrency=1)
    async def project_token_journeys(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch, within=within):
            await handle_or_exit(durably(app, handlers.token_batch), events)

    # Co-partitioning is guaranteed by the topic registry (checked above); Faust's own
    # check reads consumer metadata that may not know a just-created changelog yet and
    # then fails the first batch of a fresh app.
    for table in (tables.bot_users, tables.journeys):
        table._verified_source_topics_for_partitions.update(
            t.get_topic_name() for t in (*bot_user_topics, ticks, *token_topics, attributed))

    rebuilt = False

    @app.timer(interval=settings.projector_tick_interval_s)
    async def tick_pending_facts() -> None:
        nonlocal rebuilt
        if app.tables.recovery.in_recovery:
            return  # the table is being restored from its changelog: index it afterwards
        if not rebuilt:
            handlers.rebuild_pending_index()
            rebuilt = True
        # A tick travels through the agent's own input (same key, same partition) so the
        # timeout decision happens inside the stream, where tables may be written.
        for key in handlers.due_ticks(now_ms()):
            await ticks.send(key=key.encode(), value=b"{}")
        _update_lag(app)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp wants the charset outside content_type.
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            ready = app.rebalancing is False and not app.tables.recovery.in_recovery
            return self.json({"ready": ready}, status=200 if ready else 503)

    del attribute_bot_user_facts, project_token_journeys, tick_pending_facts
    del MetricsView, HealthView, ReadyView
    return app, handlers


def table_store(url: str) -> str:
    """The configured store, or memory when RocksDB bindings are missing here.

    Memory tables are rebuilt from their changelog topics at start: slower to
    recover, same results.
    """
    if url.startswith("rocksdb"):
        try:
            import rocksdict  # noqa: F401
        except ImportError:
            log.warning("rocksdict is not installed: Faust tables kept in memory")
            return "memory://"
    return url


def _update_lag(app: faust.App) -> None:
    consumer = app.consumer
    totals: dict[str, int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        committed = consumer._committed_offset.get(tp)  # faust keeps no public accessor
        if high is None or committed is None:
            continue
        totals[tp.topic] = totals.get(tp.topic, 0) + max(0, high - committed - 1)
    for topic_name, lag in totals.items():
        metrics.LAG.labels(topic_name).set(lag)
