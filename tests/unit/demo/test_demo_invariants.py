"""The invariant check itself: it must catch each way the promise can break."""

from __future__ import annotations

import copy
from typing import Any

from grim.demo.invariants import check, projection_diff
from grim.demo.personas import build_population
from grim.demo.simulate import ClickTruth, GroundTruth, JourneyTruth


def _truth() -> GroundTruth:
    people = {p.kind: p for p in build_population(40, seed=5, nonce=1, now_ms=0)}
    click = ClickTruth("a" * 32, "evt_" + "a" * 32, "bot", False, "177.1.2.3", "UA/1",
                       "fb.1.1700000000000.IwARx", "fb.1.1700000000000.1234567890")
    crawl = ClickTruth("c" * 32, "evt_" + "c" * 32, "bot", True, "1.1.1.1", "bot", None, None)
    paid = JourneyTruth(people["paid"], [click], 1, click.token, "pay_1", 4790, 1, True)
    unpaid = JourneyTruth(people["unpaid"], [], 1, None, "pay_2", 1990, 2, False)
    organic = JourneyTruth(people["organic"], [], 1, None, "pay_3", 1990, 2, True)
    crawler = JourneyTruth(people["crawler"], [crawl])
    return GroundTruth([paid, unpaid, organic, crawler])


def _accepted() -> list[dict[str, Any]]:
    return [
        {"event_name": "PageView", "event_id": "evt_" + "a" * 32, "user_data": {}},
        {"event_name": "Purchase", "event_id": "purchase_pay_1",
         "custom_data": {"value": 47.9, "currency": "BRL", "order_id": "pay_1"},
         "user_data": {"fbc": "fb.1.1700000000000.IwARx", "fbp": "fb.1.1700000000000.1234567890",
                       "client_ip_address": "177.1.2.3", "client_user_agent": "UA/1"}},
    ]


def test_a_correct_run_passes() -> None:
    verdict = check(_truth(), _accepted())
    assert verdict.ok, verdict.violations
    assert (verdict.purchases_expected, verdict.purchases_accepted, verdict.lost,
            verdict.duplicates) == (1, 1, 0, 0)


def test_a_lost_purchase_is_counted() -> None:
    verdict = check(_truth(), _accepted()[:1])
    assert verdict.lost == 1 and not verdict.ok


def test_a_duplicate_is_counted() -> None:
    events = _accepted()
    verdict = check(_truth(), events + [copy.deepcopy(events[1])])
    assert verdict.duplicates == 1 and not verdict.ok


def test_altered_identifiers_or_value_are_violations() -> None:
    for key, value in (("fbc", "fb.1.1700000000000.IwAR"), ("client_ip_address", "177.1.2.4"),
                       ("client_user_agent", "UA/1 "), ("fbp", None)):
        events = _accepted()
        events[1]["user_data"][key] = value
        assert not check(_truth(), events).ok, key
    events = _accepted()
    events[1]["custom_data"]["value"] = 47.0
    assert not check(_truth(), events).ok


def test_purchases_for_unpaid_or_organic_and_crawler_pageviews_are_violations() -> None:
    for order in ("pay_2", "pay_3"):
        events = _accepted() + [{"event_name": "Purchase", "event_id": f"purchase_{order}",
                                 "custom_data": {"order_id": order}}]
        assert not check(_truth(), events).ok
    events = _accepted() + [{"event_name": "PageView", "event_id": "evt_" + "c" * 32}]
    assert not check(_truth(), events).ok


def test_other_runs_events_are_ignored() -> None:
    events = _accepted() + [{"event_name": "Purchase", "event_id": "purchase_pay_other",
                             "custom_data": {"order_id": "pay_other"}}]
    assert check(_truth(), events).ok


def test_projection_diff_uses_the_baseline() -> None:
    truth = _truth()
    projected = {"clicks": 11, "paid_token": 3, "paid_organic": 1, "paid_unattributed": 0,
                 "refunded": 0, "charges": 5}
    before = {"clicks": 10, "paid_token": 2, "charges": 2}
    assert projection_diff(truth, projected, before) == []
    assert projection_diff(truth, projected) != []
