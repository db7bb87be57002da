"""The local spool and the sink's fallback order, with fakes for Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio

from grim.outbox import Outbox
from grim_redirect.sink import ClickSink
from grim_redirect.spool import Spool, SpooledRecord
from grim_schemas import ClickRecorded, decode


def click(n: int) -> ClickRecorded:
    token = f"{n:032x}"
    return ClickRecorded(producer="redirect", tracking_token=token,
                         pageview_event_id="evt_" + token, pool_id=1, pool_slug="p", bot_id=2,
                         bot_username="b_bot",
                         landing_url="https://x/go/p")


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic, value, key=None):
        self.sent.append((topic, value, key))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class FakePublisher:
    def __init__(self) -> None:
        self.producer = FakeProducer()


async def test_spool_survives_reopen_and_drains_in_order(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    sink = ClickSink(publisher=lambda: None, db=lambda: None, outbox=Outbox("redirect", "ns."),
                     spool=spool)
    events = [click(i) for i in range(3)]
    for e in events:
        assert await sink.record(e) == "spool"
    # A torn last line (crash mid-write) is skipped, the rest is kept.
    with open(tmp_path / "clicks.jsonl", "ab") as f:
        f.write(b'{"topic": "x", "ke')

    reopened = Spool(tmp_path)
    reopened.open()
    assert reopened.backlog == 3
    publisher = FakePublisher()
    drainer = ClickSink(publisher=lambda: publisher, db=lambda: None,
                        outbox=Outbox("redirect", "ns."), spool=reopened)
    assert await drainer.drain_spool() == 3
    assert reopened.backlog == 0 and list(tmp_path.iterdir()) == []
    sent = publisher.producer.sent
    assert [t for t, _, _ in sent] == ["ns.grim.click.v1"] * 3
    assert [decode(v, ClickRecorded) for _, v, _ in sent] == events
    assert [k for _, _, k in sent] == [e.tracking_token.encode() for e in events]


async def test_nothing_reachable_keeps_the_spool(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    await spool.append(SpooledRecord("t", None, b'{"event_id": "e1"}'))
    sink = ClickSink(publisher=lambda: None, db=lambda: None, outbox=Outbox("redirect"),
                     spool=spool)
    assert await sink.drain_spool() == 0
    assert spool.backlog == 1 and len(list(tmp_path.glob("*.draining"))) == 1


class FailingPublisher:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, event, timeout: float | None = None) -> None:
        from aiokafka.errors import KafkaTimeoutError

        self.calls += 1
        raise KafkaTimeoutError()


async def test_kafka_failure_falls_back_and_opens_the_breaker(tmp_path):
    publisher = FailingPublisher()
    spool = Spool(tmp_path)
    spool.open()
    sink = ClickSink(publisher=lambda: publisher, db=lambda: None, outbox=Outbox("redirect"),
                     spool=spool, breaker_seconds=60)
    assert await sink.record(click(1)) == "spool"
    assert await sink.record(click(2)) == "spool"
    assert publisher.calls == 1  # the second visitor did not wait for a dead broker
    assert spool.backlog == 2
