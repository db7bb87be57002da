"""Woovi / OpenPix: `POST /api/v1/charge` (value in cents, correlationID),
`GET /api/v1/charge/{correlationID}`; the App ID goes bare in Authorization.

Webhooks are verified by re-fetching the charge with the account's App ID
(Woovi's RSA signature would need its public key pinned per environment).
"""

from __future__ import annotations

import httpx

from grim_schemas import Payer

from .gateway_base import (
    Account,
    ChargeRequest,
    CreatedCharge,
    GatewayError,
    GatewayStatus,
    WebhookForged,
    WebhookIgnored,
    WebhookRequest,
    call_json,
    parse_time,
    png_base64,
)

_STATUS = {"ACTIVE": "pending", "COMPLETED": "paid", "EXPIRED": "expired"}


class WooviAdapter:
    name = "woovi"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")

    def _headers(self, account: Account) -> dict[str, str]:
        return {"Authorization": account.credential("app_id")}

    async def create_charge(self, account: Account, request: ChargeRequest) -> CreatedCharge:
        from grim_schemas.base import utcnow

        expires_in = max(60, int((request.expires_at - utcnow()).total_seconds()))
        body = {
            "correlationID": request.payment_id,
            "value": request.amount_cents,
            "comment": request.description[:140],
            "expiresIn": expires_in,
        }
        data = await call_json(self.client, self.name, "create_charge", "POST",
                                   f"{self.base}/api/v1/charge", json=body,
                                   headers=self._headers(account))
        charge = data.get("charge") or {}
        br_code = charge.get("brCode") or data.get("brCode")
        if not br_code:
            raise GatewayError("woovi create_charge: response lacks brCode")
        return CreatedCharge(
            gateway_charge_id=str(charge.get("correlationID") or request.payment_id),
            pix_copy_paste=br_code,
            # qrCodeImage is a URL, not an image: draw the PNG here.
            qr_png_base64=png_base64(None, br_code),
            expires_at=parse_time(charge.get("expiresDate")),
        )

    async def fetch(self, account: Account, gateway_charge_id: str) -> GatewayStatus:
        data = await call_json(self.client, self.name, "fetch", "GET",
                               f"{self.base}/api/v1/charge/{gateway_charge_id}",
                               headers=self._headers(account))
        charge = data.get("charge") or {}
        raw = str(charge.get("status", ""))
        value = charge.get("value")
        customer = charge.get("customer") or {}
        tax = customer.get("taxID")
        document = tax.get("taxID") if isinstance(tax, dict) else tax
        payer = Payer(name=customer.get("name"), email=customer.get("email"),
                      document=document, phone=customer.get("phone"))
        return GatewayStatus(
            gateway_charge_id=str(charge.get("correlationID", gateway_charge_id)),
            status=_STATUS.get(raw, "other"),
            raw_status=raw,
            amount_cents=value if isinstance(value, int) else None,
            paid_at=parse_time(charge.get("paidAt")),
            payer=payer if customer else None,
        )

    def claimed_charge_id(self, account: Account, webhook: WebhookRequest) -> str:
        body = webhook.json if isinstance(webhook.json, dict) else {}
        if body.get("evento") == "teste_webhook" or "event" not in body:
            raise WebhookIgnored("Woovi test or unknown notification")
        charge = body.get("charge") or {}
        correlation = str(charge.get("correlationID") or "").strip()
        if not correlation:
            raise WebhookForged("notification has no charge.correlationID")
        return correlation
