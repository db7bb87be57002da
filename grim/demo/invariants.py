"""The promise, as a pure check: what Meta accepted against what the simulator did.

Given the ground truth and the events the (fake) Graph accepted, list every
violation: a paid ad sale without exactly one Purchase, a Purchase whose value,
currency, order id or click identifiers differ, a Purchase for an unpaid or
organic sale, a PageView whose event_id is not the bridge page's, a crawler's
event, any event accepted twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from grim.demo.simulate import GroundTruth


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    purchases_expected: int = 0
    purchases_accepted: int = 0
    lost: int = 0
    duplicates: int = 0
    pageviews_expected: int = 0
    pageviews_accepted: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


def _same(expected: Any, actual: Any) -> bool:
    return (expected or None) == (actual or None)


def check(truth: GroundTruth, accepted: list[dict[str, Any]], *,
          check_pageviews: bool = True) -> Verdict:
    v = Verdict()
    ours = {c.token for j in truth.journeys for c in j.clicks} | {
        j.payment_id for j in truth.journeys if j.payment_id}
    # Only this run's events: the same pixel may hold earlier runs' (ids never collide).
    accepted = [e for e in accepted if str(e.get("event_id", "")).split("_", 1)[-1] in ours]
    counts = Counter((e["event_name"], e["event_id"]) for e in accepted)
    v.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    for (name, event_id), n in counts.items():
        if n > 1:
            v.violations.append(f"{name} {event_id} accepted {n} times")
    purchases = {e["event_id"]: e for e in accepted if e["event_name"] == "Purchase"}
    v.purchases_accepted = len(purchases)
    expected = truth.purchases_expected
    v.purchases_expected = len(expected)
    for j in expected:
        event_id = f"purchase_{j.payment_id}"
        event = purchases.get(event_id)
        if event is None:
            v.lost += 1
            v.violations.append(f"no Purchase for paid {j.payment_id} (#{j.persona.index})")
            continue
        custom, user = event.get("custom_data") or {}, event.get("user_data") or {}
        assert j.amount_cents is not None
        if Decimal(str(custom.get("value"))) != Decimal(j.amount_cents) / 100 \
                or custom.get("currency") != "BRL" or custom.get("order_id") != j.payment_id:
            v.violations.append(f"{event_id}: custom_data {custom} != {j.amount_cents} cents BRL")
        click = j.attributed_click
        assert click is not None
        wanted = {"fbc": click.fbc, "fbp": click.fbp, "client_ip_address": click.ip,
                  "client_user_agent": click.user_agent}
        for key, value in wanted.items():
            if not _same(value, user.get(key)):
                v.violations.append(f"{event_id}: {key} {user.get(key)!r} != clicked {value!r}")
    allowed = {f"purchase_{j.payment_id}" for j in expected}
    for event_id, event in purchases.items():
        if event_id not in allowed:
            order = (event.get("custom_data") or {}).get("order_id")
            v.violations.append(f"unexpected Purchase {event_id} (order {order}): unpaid, "
                                "organic or unknown")
    if check_pageviews:
        _pageviews(truth, accepted, v)
    return v


def _pageviews(truth: GroundTruth, accepted: list[dict[str, Any]], v: Verdict) -> None:
    pageviews = {e["event_id"] for e in accepted if e["event_name"] == "PageView"}
    human = {c.pageview_event_id for c in truth.human_clicks}
    crawler = {c.pageview_event_id for j in truth.journeys for c in j.clicks if c.crawler}
    v.pageviews_expected = len(human)
    v.pageviews_accepted = len(pageviews & human)
    for event_id in sorted(human - pageviews):
        v.violations.append(f"no PageView with the bridge's eventID {event_id}")
    for event_id in sorted(pageviews & crawler):
        v.violations.append(f"PageView {event_id} sent for a crawler")
    for event_id in sorted(pageviews - human - crawler):
        v.violations.append(f"PageView {event_id} matches no bridge page eventID")


def projection_diff(truth: GroundTruth, projected: dict[str, int],
                    baseline: dict[str, int] | None = None) -> list[str]:
    """Compare the projection's counts (see summary.projection_counts), minus what was
    there before the run, with the truth."""
    before = baseline or {}
    projected = {k: n - before.get(k, 0) for k, n in projected.items()}
    wanted = {
        "clicks": len(truth.human_clicks),
        "paid_token": len(truth.purchases_expected),
        "paid_organic": len(truth.organic_sales),
        "paid_unattributed": 0,
        "refunded": sum(1 for j in truth.journeys if j.refunded),
        "charges": sum(1 for j in truth.journeys if j.payment_id),
    }
    return [f"projection {k}: {projected.get(k)} != truth {n}" for k, n in wanted.items()
            if projected.get(k, 0) != n]
