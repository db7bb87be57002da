"""The promise end to end: every service as a subprocess, traffic only through public HTTP.

For a simulated population: each paid ad sale is accepted by the (fake) Graph exactly once
as Purchase with value, currency, order_id and the click's fbc/fbp/IP/UA byte-for-byte;
nothing for unpaid or organic sales; PageView carries the bridge page's eventID; crawlers
fire nothing; the projection's counts equal the ground truth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from grim.demo import invariants
from grim.demo.simulate import GroundTruth
from grim.demo.summary import baseline, drain, graph_events
from grim.demo.system import System, running_system

FUNNELS = 48


@pytest.fixture(scope="module")
async def system(grim_settings, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    run_dir: Path = tmp_path_factory.mktemp("e2e-invariants") / ".run"
    async with running_system(grim_settings, run_dir) as running:
        yield running


@pytest.fixture(scope="module")
async def run(system: System) -> tuple[GroundTruth, object]:
    before = await baseline(system.db)
    truth = await system.simulate(FUNNELS, seed=11)
    assert not truth.errors, truth.errors
    outcome = await drain(system.settings, system.db, truth, timeout=90, before=before)
    return truth, outcome


async def test_population_covers_every_journey(run) -> None:  # type: ignore[no-untyped-def]
    truth, _ = run
    kinds = {j.persona.kind for j in truth.journeys}
    assert kinds == {"crawler", "bounce", "browse", "unpaid", "paid", "refunded", "repeat",
                     "organic"}
    assert truth.purchases_expected and truth.organic_sales and truth.unpaid


async def test_every_paid_ad_sale_is_one_purchase_with_the_click_identifiers(
        system: System, run) -> None:  # type: ignore[no-untyped-def]
    truth, outcome = run
    assert outcome.drained, (outcome.verdict.violations if outcome.verdict else None,
                             outcome.projection_problems)
    accepted = await graph_events(system.settings.graph_url)
    verdict = invariants.check(truth, accepted)
    assert verdict.violations == []
    assert verdict.lost == 0 and verdict.duplicates == 0
    assert verdict.purchases_accepted == len(truth.purchases_expected)
    purchases = {e["event_id"]: e for e in accepted if e["event_name"] == "Purchase"}
    for journey in truth.purchases_expected:
        event = purchases[f"purchase_{journey.payment_id}"]
        click = journey.attributed_click
        assert click is not None
        assert event["user_data"]["client_user_agent"] == click.user_agent
        assert event["user_data"]["client_ip_address"] == click.ip
        assert event["custom_data"]["order_id"] == journey.payment_id


async def test_no_purchase_for_unpaid_or_organic_sales(system: System, run) -> None:  # type: ignore[no-untyped-def]
    truth, _ = run
    accepted = await graph_events(system.settings.graph_url)
    orders = {(e.get("custom_data") or {}).get("order_id") for e in accepted
              if e["event_name"] == "Purchase"}
    assert not orders & {j.payment_id for j in truth.unpaid}
    assert not orders & {j.payment_id for j in truth.organic_sales}


async def test_repeat_visitor_is_attributed_to_the_click_that_started_the_bot(
        system: System, run) -> None:  # type: ignore[no-untyped-def]
    truth, _ = run
    accepted = await graph_events(system.settings.graph_url)
    purchases = {e["event_id"]: e for e in accepted if e["event_name"] == "Purchase"}
    repeats = truth.of("repeat")
    assert repeats
    for journey in repeats:
        assert len(journey.clicks) == 2 and journey.started_token == journey.clicks[1].token
        event = purchases[f"purchase_{journey.payment_id}"]
        assert event["user_data"].get("fbc") == journey.clicks[1].fbc


async def test_pageview_event_id_is_the_bridge_page_event_id(system: System, run) -> None:  # type: ignore[no-untyped-def]
    truth, _ = run
    accepted = await graph_events(system.settings.graph_url)
    pageviews = {e["event_id"] for e in accepted if e["event_name"] == "PageView"}
    human = {c.pageview_event_id for c in truth.human_clicks}
    crawlers = {c.pageview_event_id for j in truth.of("crawler") for c in j.clicks}
    assert human <= pageviews
    assert all(eid == f"evt_{c.token}" for c in truth.human_clicks for eid in
               [c.pageview_event_id])
    assert not crawlers & pageviews


async def test_projection_counts_equal_the_ground_truth(run) -> None:  # type: ignore[no-untyped-def]
    truth, outcome = run
    assert outcome.projection_problems == []
    assert outcome.projected["paid_token"] == len(truth.purchases_expected)
    assert outcome.projected["paid_organic"] == len(truth.organic_sales)
    assert outcome.projected["clicks"] == len(truth.human_clicks)


async def test_dispatcher_ledger_matches_what_meta_accepted(system: System, run) -> None:  # type: ignore[no-untyped-def]
    truth, _ = run
    ids = [f"purchase_{j.payment_id}" for j in truth.purchases_expected]
    rows = await system.db.fetch(
        "SELECT event_id FROM dispatcher.ledger WHERE event_name = 'Purchase'"
        " AND event_id = ANY($1::text[])", ids)
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
