from datetime import UTC, datetime

from grim_dispatcher.classify import Outcome, Verdict
from grim_dispatcher.delivery import Deliverer, Item, backoff
from grim_schemas.events import ConversionRequested


def item(i: int) -> Item:
    conv = ConversionRequested(event_name="Purchase", event_time=datetime.now(UTC),
                               pixel_id="1", producer="t", event_id=f"purchase_{i}")
    return Item(conv, {"event_id": conv.event_id})


OK = Outcome(Verdict.ACCEPTED, status=200, events_received=1, fbtrace_id="T")
FLAKY = Outcome(Verdict.TRANSIENT, status=500)
BAD = Outcome(Verdict.INVALID_EVENTS, status=400, code=100, subcode=2804001, message="bad fbc")


class FakeSend:
    """Refuses any request holding a bad id; fails the first `failures` requests."""

    def __init__(self, bad: set[str] = frozenset(), failures: int = 0,
                 outcome_on_fail: Outcome = FLAKY) -> None:
        self.bad, self.failures, self.fail_with = bad, failures, outcome_on_fail
        self.calls: list[list[str]] = []

    async def __call__(self, events: list[dict]) -> Outcome:
        ids = [e["event_id"] for e in events]
        self.calls.append(ids)
        if self.failures:
            self.failures -= 1
            return self.fail_with
        if self.bad & set(ids):
            return BAD
        return OK


async def no_sleep(_: float) -> None:
    return None


def deliverer(send: FakeSend, attempts: int = 4) -> Deliverer:
    return Deliverer(send, attempts=attempts, sleep=no_sleep, rand=lambda: 0.5)


async def test_one_request_for_a_clean_batch() -> None:
    send = FakeSend()
    report = await deliverer(send).deliver([item(i) for i in range(1000)])
    assert len(send.calls) == 1 and len(send.calls[0]) == 1000
    assert len(report.accepted) == 1000 and not report.dead and not report.later


async def test_bisect_isolates_one_bad_event() -> None:
    send = FakeSend(bad={"purchase_537"})
    report = await deliverer(send).deliver([item(i) for i in range(1000)])
    assert len(report.accepted) == 999
    assert [i.conversion.event_id for i, _ in report.dead] == ["purchase_537"]
    assert report.dead[0][1].subcode == 2804001
    # log2(1000) levels, two requests each, plus the first: far fewer than one per event.
    assert report.requests <= 2 * 10 + 1
    accepted_ids = [i.conversion.event_id for i, _ in report.accepted]
    assert len(set(accepted_ids)) == 999


async def test_bisect_with_several_bad_events() -> None:
    bad = {"purchase_3", "purchase_4", "purchase_90"}
    report = await deliverer(FakeSend(bad=bad)).deliver([item(i) for i in range(100)])
    assert {i.conversion.event_id for i, _ in report.dead} == bad
    assert len(report.accepted) == 97


async def test_transient_errors_retry_in_process_then_succeed() -> None:
    send = FakeSend(failures=2)
    report = await deliverer(send).deliver([item(i) for i in range(10)])
    assert len(send.calls) == 3 and report.retries == 2
    assert len(report.accepted) == 10


async def test_exhausted_retries_are_handed_back_for_later() -> None:
    send = FakeSend(failures=10)
    report = await deliverer(send, attempts=3).deliver([item(i) for i in range(10)])
    assert len(send.calls) == 3
    assert len(report.later) == 10 and not report.accepted and not report.dead


async def test_invalid_token_parks_everything_and_reports_it() -> None:
    token = Outcome(Verdict.INVALID_TOKEN, status=400, code=190)
    send = FakeSend(failures=1, outcome_on_fail=token)
    report = await deliverer(send).deliver([item(i) for i in range(5)])
    assert len(send.calls) == 1
    assert len(report.dead) == 5 and report.token_refused is token


def test_backoff_has_jitter_and_a_cap() -> None:
    assert backoff(0, base=0.2, cap=5, throttled=False, rand=1.0) == 0.2
    assert backoff(3, base=0.2, cap=5, throttled=False, rand=1.0) == 1.6
    assert backoff(10, base=0.2, cap=5, throttled=False, rand=1.0) == 5
    assert backoff(1, base=0.2, cap=5, throttled=True, rand=1.0) == 1.6
    assert backoff(3, base=0.2, cap=5, throttled=False, rand=0.25) == 0.4
