from types import SimpleNamespace

from grim_dispatcher import dlq
from grim_dispatcher.classify import Outcome, Verdict
from grim_dispatcher.loop import partition_due
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested


def test_retry_delay_grows_then_repeats() -> None:
    delays = [30, 120, 600]
    assert [dlq.retry_delay(n, delays) for n in (1, 2, 3, 4, 9)] == [30, 120, 600, 600, 600]


def test_headers_round_trip() -> None:
    headers = dlq.retry_headers(3, 1.5, now_ms=1000)
    assert dlq.read_headers(headers) == (2500, 3)
    assert dlq.read_headers(None) == (0, 0)
    assert dlq.read_headers([("attempt", b"x")]) == (0, 0)


def rec(offset: int, not_before: int | None):
    headers = [] if not_before is None else dlq.retry_headers(1, 0, now_ms=not_before)
    return SimpleNamespace(offset=offset, headers=headers)


def test_partition_due_separates_waiting_records() -> None:
    records = [rec(0, 100), rec(1, None), rec(2, 500), rec(3, 50)]
    due, waiting = partition_due(records, now_ms=200)
    assert [r.offset for r in due] == [0, 1, 3]
    assert [r.offset for r in waiting] == [2]
    due, waiting = partition_due(records[:2], now_ms=200)
    assert len(due) == 2 and waiting == []


def test_dlq_entry_carries_reason_and_graph_details() -> None:
    conv = ConversionRequested(event_name="Purchase", event_time=utcnow(), pixel_id="42",
                               producer="t", event_id="purchase_9",
                               custom_data={"value": 1, "currency": "BRL"})
    out = Outcome(Verdict.INVALID_EVENTS, status=400, code=100, subcode=2804001,
                  message="bad fbc", fbtrace_id="TR")
    e = dlq.entry(conv, reason=out.reason, kind=dlq.kind_of(out), outcome=out)
    assert (e["pixel_id"], e["event_id"], e["code"], e["subcode"], e["fbtrace_id"]) == (
        "42", "purchase_9", 100, 2804001, "TR")
    assert "bad fbc" in e["reason"] and e["kind"] == "invalid_events"
    assert ConversionRequested.model_validate(e["conversion"]) == conv
