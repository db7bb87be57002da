"""The sandbox PIX gateway (grim/sandbox/pix_sandbox.py): signed webhooks, re-fetch.

It speaks a small API modelled on the real gateways: `POST /v1/charges`,
`GET /v1/charges/{id}`, webhooks signed `X-Sandbox-Signature: t=..,v1=..`
(HMAC-SHA256 of `<t>.<body>`).
"""

from __future__ import annotations

import httpx

from grim_schemas import Payer

from .gateway_base import (
    Account,
    ChargeRequest,
    CreatedCharge,
    GatewayConfigError,
    GatewayError,
    GatewayStatus,
    WebhookForged,
    WebhookRequest,
    call_json,
    parse_time,
    png_base64,
)
from .signatures import SANDBOX_HEADER, SignatureError, verify_sandbox

_STATUSES = {"pending", "paid", "refunded", "charged_back", "expired"}


class SandboxAdapter:
    name = "sandbox"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")

    def _headers(self, account: Account) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.credential('api_key')}"}

    async def create_charge(self, account: Account, request: ChargeRequest) -> CreatedCharge:
        if not account.pix_key:
            raise GatewayConfigError(f"sandbox account {account.name!r} needs a PIX key")
        body = {
            "external_id": request.payment_id,
            "amount_cents": request.amount_cents,
            "description": request.description[:140],
            "expires_at": request.expires_at.isoformat(),
            "webhook_url": request.notification_url,
            "pix_key": account.pix_key,
            "merchant_name": account.credentials.get("merchant_name") or account.name,
            "merchant_city": account.credentials.get("merchant_city") or "SAO PAULO",
        }
        data = await call_json(self.client, self.name, "create_charge", "POST",
                                   f"{self.base}/v1/charges", json=body,
                                   headers=self._headers(account))
        if not data.get("id") or not data.get("br_code"):
            raise GatewayError("sandbox create_charge: response lacks id or br_code")
        return CreatedCharge(
            gateway_charge_id=str(data["id"]),
            pix_copy_paste=data["br_code"],
            qr_png_base64=png_base64(data.get("qr_code_base64"), data["br_code"]),
            expires_at=parse_time(data.get("expires_at")),
        )

    async def fetch(self, account: Account, gateway_charge_id: str) -> GatewayStatus:
        data = await call_json(self.client, self.name, "fetch", "GET",
                                   f"{self.base}/v1/charges/{gateway_charge_id}",
                                   headers=self._headers(account))
        raw = str(data.get("status", ""))
        payer = data.get("payer") or None
        return GatewayStatus(
            gateway_charge_id=str(data.get("id", gateway_charge_id)),
            status=raw if raw in _STATUSES else "other",
            raw_status=raw,
            amount_cents=data.get("amount_cents"),
            paid_at=parse_time(data.get("paid_at")),
            refunded_at=parse_time(data.get("refunded_at")),
            payer=Payer(**payer) if isinstance(payer, dict) else None,
        )

    def claimed_charge_id(self, account: Account, webhook: WebhookRequest) -> str:
        if not account.webhook_secret:
            raise WebhookForged("no webhook secret configured for this account: cannot verify")
        try:
            verify_sandbox(account.webhook_secret, webhook.headers.get(SANDBOX_HEADER.lower()),
                           webhook.body)
        except SignatureError as exc:
            raise WebhookForged(str(exc)) from exc
        body = webhook.json if isinstance(webhook.json, dict) else {}
        charge_id = str((body.get("data") or {}).get("id") or "")
        if not charge_id:
            raise WebhookForged("notification has no data.id")
        return charge_id
