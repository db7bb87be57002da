"""The batch handler with in-memory adapters: what is sent, skipped, recorded and parked."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import orjson
from grim_dispatcher.classify import Outcome, Verdict
from grim_dispatcher.dispatcher import Dispatcher
from grim_dispatcher.settings import DispatcherSettings
from grim_schemas import encode
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested, ConversionUserData

from grim.config.pixels import Pixel, PixelCredentials


class Ledger:
    def __init__(self, accepted=()):  # type: ignore[no-untyped-def]
        self.rows = {k: 1 for k in accepted}
        self.parked: list[dict] = []

    async def known_among(self, keys):  # type: ignore[no-untyped-def]
        keys = list(keys)
        pending = {(e["pixel_id"], e["event_name"], e["event_id"]) for e in self.parked}
        accepted = {k for k in keys if k in self.rows}
        return accepted, {k for k in keys if k in pending and k not in accepted}

    async def record(self, pixel_id, events, events_received, fbtrace_id):  # type: ignore[no-untyped-def]
        for name, event_id in events:
            self.rows[(pixel_id, name, event_id)] = events_received

    async def park(self, entries):  # type: ignore[no-untyped-def]
        self.parked += entries

    async def pending_dead_letters(self) -> int:
        return len(self.parked)


class Pixels:
    def __init__(self, **pixels: PixelCredentials) -> None:
        self.pixels = pixels

    async def get(self, pixel_id: str) -> PixelCredentials | None:
        return self.pixels.get(f"p{pixel_id}")

    async def flag(self, pixel_id: str, reason: str) -> None:
        raise AssertionError("not expected")


class Graph:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[dict], str | None]] = []

    async def send_events(self, pixel_id, token, events, test_code=None):  # type: ignore[no-untyped-def]
        self.calls.append((pixel_id, token, events, test_code))
        return Outcome(Verdict.ACCEPTED, status=200, events_received=len(events), fbtrace_id="T")


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic, value, key=None, headers=None):  # type: ignore[no-untyped-def]
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def creds(pixel_id: str, *, enabled=("PageView", "Purchase"), flagged=None, test_code=None):  # type: ignore[no-untyped-def]
    return PixelCredentials(
        Pixel(pixel_id=pixel_id, name="", enabled_events=enabled, test_event_code=test_code,
              action_source="website", has_access_token=True, flagged_reason=flagged),
        "token-" + pixel_id,
    )


def record(conv: ConversionRequested, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic="grim.conversions.v1", partition=0, offset=offset,
                           key=b"k", value=encode(conv), headers=())


def conv(pixel_id: str, name: str, n: int) -> ConversionRequested:
    return ConversionRequested(
        event_name=name, event_id=f"{name}_{n}", event_time=utcnow() - timedelta(minutes=1),
        pixel_id=pixel_id, producer="t", event_source_url="https://x.test/go/a",
        user_data=ConversionUserData(client_user_agent="UA", client_ip_address="203.0.113.1"),
        custom_data={"value": 10, "currency": "BRL"} if name == "Purchase" else {},
    )


def dispatcher(ledger, pixels, graph, producer) -> Dispatcher:  # type: ignore[no-untyped-def]
    return Dispatcher(DispatcherSettings(), ledger=ledger, pixels=pixels, graph=graph,
                      publisher=SimpleNamespace(producer=producer, namespace=""))


async def test_sends_purchase_first_skips_disabled_and_known_events() -> None:
    ledger = Ledger(accepted=[("1", "PageView", "PageView_0")])
    graph, producer = Graph(), Producer()
    d = dispatcher(ledger, Pixels(p1=creds("1", test_code="TEST42")), graph, producer)
    convs = [conv("1", "PageView", 0), conv("1", "PageView", 1), conv("1", "ViewContent", 2),
             conv("1", "Purchase", 3), conv("1", "Purchase", 3)]
    await d.handle([record(c, i) for i, c in enumerate(convs)])
    [(pixel_id, token, events, test_code)] = graph.calls
    assert (pixel_id, token, test_code) == ("1", "token-1", "TEST42")
    assert [e["event_id"] for e in events] == ["Purchase_3", "PageView_1"]
    assert ("1", "Purchase", "Purchase_3") in ledger.rows
    assert ("1", "PageView", "PageView_1") in ledger.rows
    assert not any(k[1] == "ViewContent" for k in ledger.rows)
    assert producer.sent == [] and ledger.parked == []


async def test_flagged_and_unknown_pixels_are_parked_without_a_request() -> None:
    ledger, graph, producer = Ledger(), Graph(), Producer()
    d = dispatcher(ledger, Pixels(p2=creds("2", flagged="token expired")), graph, producer)
    await d.handle([record(conv("2", "Purchase", 1), 0), record(conv("3", "Purchase", 2), 1)])
    assert graph.calls == []
    kinds = {e["pixel_id"]: e["kind"] for e in ledger.parked}
    assert kinds == {"2": "pixel_flagged", "3": "unknown_pixel"}
    assert [t for t, _ in producer.sent] == [d.dlq_topic] * 2
    assert {orjson.loads(v)["event_id"] for _, v in producer.sent} == {"Purchase_1",
                                                                       "Purchase_2"}


async def test_a_key_in_two_overlapping_batches_is_sent_once() -> None:
    ledger, graph, producer = Ledger(), Graph(), Producer()
    d = dispatcher(ledger, Pixels(p1=creds("1")), graph, producer)
    first = await d.take_in([record(conv("1", "Purchase", 1), 0)])
    # Taken in while the first batch is still out: the ledger does not know the key yet.
    second = await d.take_in([record(conv("1", "Purchase", 1), 1),
                              record(conv("1", "Purchase", 2), 2)])
    assert first is not None and second is not None and len(second.pending) == 2
    assert d.in_flight_since is not None
    await d.deliver(first)
    await d.deliver(second)
    assert [[e["event_id"] for e in events] for _, _, events, _ in graph.calls] == [
        ["Purchase_1"], ["Purchase_2"]]
    assert d.in_flight_since is None


async def test_a_dropped_batch_no_longer_counts_as_in_flight() -> None:
    d = dispatcher(Ledger(), Pixels(p1=creds("1")), Graph(), Producer())
    taken = await d.take_in([record(conv("1", "Purchase", 1), 0)])
    assert taken is not None and d.in_flight_since is not None
    d.discard(taken)
    assert d.in_flight_since is None
