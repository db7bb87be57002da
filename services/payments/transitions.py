"""Apply facts to a charge: the state machine's decision, its fact rows and its
events, all in the caller's transaction (the outbox publishes the events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from grim.outbox import Outbox
from grim_schemas import Event, PaymentConfirmed, PaymentExpired, PaymentRefunded, Payer
from grim_schemas.base import utcnow

from . import delivery, repository
from .metrics import TRANSITIONS
from .state import decide


@dataclass(frozen=True)
class FactDetails:
    """What the gateway told us about the facts being applied."""

    gateway_event_id: str
    paid_at: datetime | None = None
    refunded_at: datetime | None = None
    payer: Payer | None = None


async def apply_facts(
    conn: asyncpg.Connection,
    outbox: Outbox,
    charge_id: str,
    facts: list[str],
    details: FactDetails,
    delivery_url_for: Callable[[str], str],
) -> list[str]:
    """Record the new facts among `facts` for the charge; returns the ones recorded.

    Must run inside a transaction: the charge row is locked so two webhooks for
    the same charge serialise, and the facts, the status and the outbox rows
    commit together.
    """
    charge = await repository.lock(conn, charge_id)
    recorded = await repository.facts_of(conn, charge_id)
    new: list[str] = []
    for fact in facts:
        decision = decide(recorded, fact)
        if not decision.record:
            continue
        now = utcnow()
        occurred = {
            "paid": details.paid_at, "refunded": details.refunded_at,
            "charged_back": details.refunded_at,
        }.get(fact) or now
        await repository.add_fact(conn, charge_id, fact, details.gateway_event_id, occurred)
        recorded = recorded | {fact}
        new.append(fact)
        TRANSITIONS.labels(fact, decision.state).inc()
        event = await _event_for(conn, charge, decision.event, fact, occurred, details,
                                 delivery_url_for)
        if event is not None:
            await outbox.add(conn, event)
        await repository.set_status(conn, charge_id, decision.state)
    return new


async def _event_for(
    conn: asyncpg.Connection, charge: repository.Charge, kind: str | None, fact: str,
    occurred: datetime, details: FactDetails, delivery_url_for: Callable[[str], str],
) -> Event | None:
    common = {"producer": "payments", "bot_id": charge.bot_id,
              "telegram_user_id": charge.telegram_user_id, "payment_id": charge.id}
    if kind == "paid":
        token = await delivery.mint(conn, charge.id)
        return PaymentConfirmed(
            event_id=f"paid_{charge.id}", gateway=charge.gateway,
            gateway_event_id=details.gateway_event_id, amount_cents=charge.amount_cents,
            paid_at=occurred, payer=details.payer, product_id=charge.product_id,
            tracking_token=charge.tracking_token, delivery_url=delivery_url_for(token),
            **common,
        )
    if kind == "refunded":
        await delivery.revoke(conn, charge.id)
        return PaymentRefunded(
            event_id=f"{fact}_{charge.id}", gateway=charge.gateway,
            gateway_event_id=details.gateway_event_id, amount_cents=charge.amount_cents,
            refunded_at=occurred, reason="charged_back" if fact == "charged_back" else "refunded",
            **common,
        )
    if kind == "expired":
        return PaymentExpired(event_id=f"expired_{charge.id}", expired_at=occurred, **common)
    return None
