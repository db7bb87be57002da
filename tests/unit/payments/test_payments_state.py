from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grim_payments.state import FACTS, RANK, decide, facts_for_status, state_of


def run(facts: list[str]) -> tuple[str, list[str], list[str]]:
    recorded: frozenset[str] = frozenset()
    state = "created"
    stored: list[str] = []
    events: list[str] = []
    for fact in facts:
        decision = decide(recorded, fact)
        if decision.record:
            recorded |= {fact}
            stored.append(fact)
        if decision.event:
            events.append(decision.event)
        state = decision.state
    return state, stored, events


fact_lists = st.lists(st.sampled_from(FACTS), max_size=20)


@given(facts=fact_lists, data=st.data())
def test_final_state_does_not_depend_on_order_or_duplicates(facts: list[str], data) -> None:
    shuffled = data.draw(st.permutations(facts + facts[: len(facts) // 2]))
    assert run(facts)[0] == run(list(shuffled))[0]


@given(facts=fact_lists)
def test_each_fact_is_recorded_and_announced_at_most_once(facts: list[str]) -> None:
    _, stored, events = run(facts)
    assert all(n == 1 for n in Counter(stored).values())
    assert Counter(events)["paid"] <= 1 and Counter(events)["expired"] <= 1


@given(facts=fact_lists)
def test_money_outranks_expiry_and_paid_is_always_announced(facts: list[str]) -> None:
    state, _, events = run(facts)
    if "paid" in facts:
        assert "paid" in events
        assert RANK[state] >= RANK["paid"]
    if set(facts) & {"paid", "refunded", "charged_back"}:
        assert state != "expired"
    expected = max(facts, key=RANK.__getitem__) if facts else "created"
    assert state == expected


def test_expiry_after_payment_is_ignored_but_payment_after_expiry_counts() -> None:
    assert run(["pending", "paid", "expired"]) == ("paid", ["pending", "paid"], ["paid"])
    assert run(["pending", "expired", "paid"]) == (
        "paid", ["pending", "expired", "paid"], ["expired", "paid"])


def test_refund_before_paid_records_both_once() -> None:
    state, stored, events = run(["refunded", "paid", "paid", "refunded"])
    assert state == "refunded"
    assert stored == ["refunded", "paid"]
    assert events == ["refunded", "paid"]


def test_chargeback_is_a_refund_event_with_its_own_state() -> None:
    assert run(["paid", "charged_back"]) == (
        "charged_back", ["paid", "charged_back"], ["paid", "refunded"])


def test_unknown_fact_is_an_error() -> None:
    with pytest.raises(ValueError):
        decide(frozenset(), "teleported")
    with pytest.raises(ValueError):
        state_of(["nope"])


def test_gateway_statuses_map_to_facts() -> None:
    assert facts_for_status("paid", paid_known=True) == ["paid"]
    assert facts_for_status("refunded", paid_known=True) == ["paid", "refunded"]
    assert facts_for_status("refunded", paid_known=False) == ["refunded"]
    assert facts_for_status("other", paid_known=False) == []
