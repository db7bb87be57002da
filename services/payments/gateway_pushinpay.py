"""PushinPay: `POST /pix/cashIn` (value in cents), `GET /transactions/{id}`.

PushinPay does not sign its webhooks, so a notification only names a
transaction: its status is always re-fetched with the account's token.
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
    WebhookRequest,
    call_json,
    parse_time,
    png_base64,
)

_STATUS = {"created": "pending", "paid": "paid", "canceled": "expired", "refunded": "refunded"}
MIN_CENTS = 50


class PushinPayAdapter:
    name = "pushinpay"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")

    def _headers(self, account: Account) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.credential('token')}",
                "Accept": "application/json"}

    async def create_charge(self, account: Account, request: ChargeRequest) -> CreatedCharge:
        if request.amount_cents < MIN_CENTS:
            raise GatewayError(f"pushinpay charges start at {MIN_CENTS} cents")
        body = {"value": request.amount_cents, "webhook_url": request.notification_url}
        data = await call_json(self.client, self.name, "create_charge", "POST",
                                   f"{self.base}/pix/cashIn", json=body,
                                   headers=self._headers(account))
        if not data.get("id") or not data.get("qr_code"):
            raise GatewayError("pushinpay create_charge: response lacks id or qr_code")
        return CreatedCharge(
            gateway_charge_id=str(data["id"]),
            pix_copy_paste=data["qr_code"],
            qr_png_base64=png_base64(data.get("qr_code_base64"), data["qr_code"]),
        )

    async def fetch(self, account: Account, gateway_charge_id: str) -> GatewayStatus:
        data = await call_json(self.client, self.name, "fetch", "GET",
                                   f"{self.base}/transactions/{gateway_charge_id}",
                                   headers=self._headers(account))
        raw = str(data.get("status", ""))
        value = data.get("value")
        amount = int(value) if isinstance(value, int | str) and str(value).isdigit() else None
        payer = Payer(name=data.get("payer_name") or None,
                      document=data.get("payer_national_registration") or None)
        return GatewayStatus(
            gateway_charge_id=str(data.get("id", gateway_charge_id)),
            status=_STATUS.get(raw, "other"),
            raw_status=raw,
            amount_cents=amount,
            # PushinPay has no payment timestamp of its own; updated_at moves when it is paid.
            paid_at=parse_time(data.get("updated_at")) if raw == "paid" else None,
            payer=payer if (payer.name or payer.document) else None,
        )

    def claimed_charge_id(self, account: Account, webhook: WebhookRequest) -> str:
        body = webhook.json if isinstance(webhook.json, dict) else {}
        charge_id = str(body.get("id") or "").strip()
        if not charge_id or len(charge_id) > 64:
            raise WebhookForged("notification has no transaction id")
        return charge_id
