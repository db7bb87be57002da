"""Reconcile pending charges past their expiry, so no phantom pending sale stays.

Each one is re-fetched from its gateway: a payment whose webhook was lost is
recorded as paid; otherwise the charge is expired. If the gateway stays
unreachable long after the expiry, the charge is expired locally (a later
payment still wins: `paid` outranks `expired`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from grim.crypto import SecretBox
from grim_schemas.base import utcnow

from . import catalog, repository
from .gateway_base import GatewayAdapter, GatewayError, GatewayStatus
from .metrics import EXPIRED
from .settings import PaymentsSettings
from .webhooks import WebhookService

log = logging.getLogger(__name__)


class ExpiryReconciler:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, adapters: dict[str, GatewayAdapter],
                 webhooks: WebhookService, settings: PaymentsSettings) -> None:
        self.pool = pool
        self.box = box
        self.adapters = adapters
        self.webhooks = webhooks
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("expiry reconciliation failed (%s); next round later", exc)
            try:
                await asyncio.wait_for(self._stopping.wait(),
                                       timeout=self.settings.expiry_interval_seconds)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """One pass; returns how many charges left 'pending'."""
        settled = 0
        charges = await repository.pending_past_expiry(self.pool,
                                                       self.settings.expiry_grace_seconds)
        for charge in charges:
            status = await self._gateway_status(charge)
            if status is None:
                continue
            outcome = await self.webhooks.apply(charge, status)
            EXPIRED.labels("paid_late" if status.status != "expired" else "expired").inc()
            settled += outcome == "accepted"
        return settled

    async def _gateway_status(self, charge: repository.Charge) -> GatewayStatus | None:
        expired = GatewayStatus(gateway_charge_id=charge.gateway_charge_id or "",
                                status="expired", raw_status="local_expiry")
        account = await catalog.load_account(self.pool, self.box, charge.account_id)
        adapter = self.adapters.get(charge.gateway)
        if account is None or adapter is None or not charge.gateway_charge_id:
            return expired
        try:
            status = await adapter.fetch(account, charge.gateway_charge_id)
        except GatewayError as exc:
            overdue = utcnow() - charge.expires_at
            if overdue > timedelta(seconds=self.settings.expiry_local_after_seconds):
                EXPIRED.labels("gateway_unreachable").inc()
                return expired
            log.info("cannot reach %s to reconcile (%s); will retry", charge.gateway, exc,
                     extra={"payment_id": charge.id})
            return None
        if status.status in ("paid", "refunded", "charged_back"):
            return status
        # Still pending (or cancelled) at the gateway past our expiry: it is expired for us.
        return expired
