"""Gateway webhooks: verify, re-fetch, apply the facts the gateway reports.

A notification is never trusted for what it claims: where the gateway signs,
the signature is checked first; in every case the charge is re-fetched from
the gateway with the account's credentials, and only that answer drives the
state machine.
"""

from __future__ import annotations

import logging

import asyncpg

from grim.crypto import SecretBox
from grim.outbox import Outbox

from . import catalog, repository
from .gateway_base import (
    ChargeNotFound,
    GatewayAdapter,
    GatewayError,
    WebhookForged,
    WebhookIgnored,
    WebhookRequest,
)
from .metrics import WEBHOOKS
from .settings import PaymentsSettings
from .state import facts_for_status
from .transitions import FactDetails, apply_facts

log = logging.getLogger(__name__)


class UnknownAccount(LookupError):
    pass


class Forged(PermissionError):
    pass


class Unverifiable(PermissionError):
    pass


class GatewayUnavailable(RuntimeError):
    """Could not re-fetch the charge now; the gateway should retry the webhook."""


class WebhookService:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, adapters: dict[str, GatewayAdapter],
                 outbox: Outbox, settings: PaymentsSettings) -> None:
        self.pool = pool
        self.box = box
        self.adapters = adapters
        self.outbox = outbox
        self.settings = settings

    async def handle(self, gateway: str, account_id: int, webhook: WebhookRequest) -> str:
        """Returns the outcome (accepted, duplicate, ignored, amount_mismatch) or raises."""
        account = await catalog.load_account(self.pool, self.box, account_id)
        adapter = self.adapters.get(gateway)
        if account is None or account.gateway != gateway or adapter is None:
            raise UnknownAccount(f"no {gateway} account {account_id}")
        try:
            claimed = adapter.claimed_charge_id(account, webhook)
        except WebhookForged as exc:
            WEBHOOKS.labels(gateway, "forged").inc()
            raise Forged(str(exc)) from exc
        except WebhookIgnored:
            WEBHOOKS.labels(gateway, "ignored").inc()
            return "ignored"
        charge = await repository.by_gateway_charge(self.pool, account.id, claimed)
        if charge is None:
            # Not a charge Grim issued (or a guessed id): nothing to change, nothing to retry.
            WEBHOOKS.labels(gateway, "ignored").inc()
            return "ignored"
        try:
            status = await adapter.fetch(account, charge.gateway_charge_id or claimed)
        except ChargeNotFound as exc:
            WEBHOOKS.labels(gateway, "unverifiable").inc()
            raise Unverifiable(f"{gateway} does not know charge {claimed}") from exc
        except GatewayError as exc:
            WEBHOOKS.labels(gateway, "retry").inc()
            raise GatewayUnavailable(str(exc)) from exc
        outcome = await self.apply(charge, status)
        WEBHOOKS.labels(gateway, outcome).inc()
        return outcome

    async def apply(self, charge: repository.Charge, status) -> str:  # type: ignore[no-untyped-def]
        """Apply a re-fetched gateway status to the charge (webhooks and reconciliation)."""
        if status.amount_cents is not None and status.amount_cents != charge.amount_cents \
                and status.status in ("paid", "refunded", "charged_back"):
            log.error("gateway amount %s differs from charge amount %s; not applied",
                      status.amount_cents, charge.amount_cents,
                      extra={"payment_id": charge.id})
            return "amount_mismatch"
        facts = facts_for_status(status.status, paid_known=status.paid_at is not None)
        if not facts:
            return "ignored"
        details = FactDetails(
            gateway_event_id=f"{status.gateway_charge_id}:{status.raw_status}",
            paid_at=status.paid_at, refunded_at=status.refunded_at, payer=status.payer,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            recorded = await apply_facts(conn, self.outbox, charge.id, facts, details,
                                         self.settings.delivery_url)
        return "accepted" if recorded else "duplicate"
