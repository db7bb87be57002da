"""The payment state machine: created -> pending -> paid -> refunded / charged_back,
and pending -> expired.

Pure and order-independent. A charge's state is a function of the set of facts
recorded for it (the highest-ranked one wins), so a duplicated `paid`, a `paid`
before `pending` or a `refunded` before `paid` all converge on the same state;
each fact is recorded, and announced, at most once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Fact = Literal["pending", "paid", "refunded", "charged_back", "expired"]
State = Literal["created", "pending", "expired", "paid", "refunded", "charged_back"]
EventKind = Literal["paid", "refunded", "expired"]

FACTS: tuple[Fact, ...] = ("pending", "paid", "refunded", "charged_back", "expired")
# Money received outranks an expiry: a late payment of an expired charge is a sale.
RANK: dict[str, int] = {
    "created": 0, "pending": 1, "expired": 2, "paid": 3, "refunded": 4, "charged_back": 5,
}
MONEY_FACTS = frozenset({"paid", "refunded", "charged_back"})
_EVENT_OF: dict[str, EventKind | None] = {
    "pending": None,  # announced by PixGenerated when the charge is created
    "paid": "paid",
    "refunded": "refunded",
    "charged_back": "refunded",
    "expired": "expired",
}


@dataclass(frozen=True)
class Decision:
    state: State
    record: bool
    """The fact is new and must be stored (with its event, if any, in the same transaction)."""
    event: EventKind | None
    """The event announcing the fact, or None (duplicate, ignored or silent fact)."""


def state_of(facts: Iterable[str]) -> State:
    best: State = "created"
    for fact in facts:
        if fact not in RANK:
            raise ValueError(f"unknown fact {fact!r}")
        if RANK[fact] > RANK[best]:
            best = fact  # type: ignore[assignment]
    return best


def decide(recorded: frozenset[str], fact: str) -> Decision:
    """What to do with `fact` given the facts already recorded for the charge."""
    if fact not in _EVENT_OF:
        raise ValueError(f"unknown fact {fact!r}")
    if fact in recorded:
        return Decision(state_of(recorded), record=False, event=None)
    if fact == "expired" and recorded & MONEY_FACTS:
        # The buyer paid: a later expiry (local clock or gateway) changes nothing.
        return Decision(state_of(recorded), record=False, event=None)
    return Decision(state_of(recorded | {fact}), record=True, event=_EVENT_OF[fact])


def facts_for_status(status: str, *, paid_known: bool) -> list[Fact]:
    """Facts implied by a gateway status normalised to a Grim name.

    A refund or chargeback implies the money arrived first; when the gateway
    tells us when (`paid_known`), the `paid` fact is recorded too, so a sale
    whose first webhook we see already refunded still produces its Purchase
    and its refund.
    """
    if status == "pending":
        return ["pending"]
    if status == "paid":
        return ["paid"]
    if status in ("refunded", "charged_back"):
        return (["paid"] if paid_known else []) + [status]  # type: ignore[list-item]
    if status == "expired":
        return ["expired"]
    return []
