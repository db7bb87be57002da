"""Mercado Pago: `POST /v1/payments` with payment_method_id=pix (amount in reais),
`GET /v1/payments/{id}`, webhooks signed with x-signature."""

from __future__ import annotations

from datetime import timedelta, timezone

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
from .money import InvalidAmount, format_reais, reais_to_cents
from .signatures import SignatureError, verify_mercadopago

_STATUS = {
    "pending": "pending", "in_process": "pending", "authorized": "pending",
    "approved": "paid", "refunded": "refunded", "charged_back": "charged_back",
    "cancelled": "expired", "rejected": "expired",
}
_BRT = timezone(timedelta(hours=-3))


class MercadoPagoAdapter:
    name = "mercadopago"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")

    def _headers(self, account: Account) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.credential('access_token')}"}

    async def create_charge(self, account: Account, request: ChargeRequest) -> CreatedCharge:
        body = {
            # A two-decimal string read as float round-trips exactly through JSON (shortest repr).
            "transaction_amount": float(format_reais(request.amount_cents)),
            "description": request.description[:256],
            "payment_method_id": "pix",
            "payer": {"email": account.credentials.get("payer_email") or "comprador@grim.app"},
            "external_reference": request.payment_id,
            "notification_url": request.notification_url,
            "date_of_expiration": request.expires_at.astimezone(_BRT).isoformat(
                timespec="milliseconds"),
        }
        headers = self._headers(account) | {"X-Idempotency-Key": request.payment_id}
        data = await call_json(self.client, self.name, "create_charge", "POST",
                                   f"{self.base}/v1/payments", json=body, headers=headers)
        tx = (data.get("point_of_interaction") or {}).get("transaction_data") or {}
        if not data.get("id") or not tx.get("qr_code"):
            raise GatewayError("mercadopago create_charge: response lacks id or qr_code")
        return CreatedCharge(
            gateway_charge_id=str(data["id"]),
            pix_copy_paste=tx["qr_code"],
            qr_png_base64=png_base64(tx.get("qr_code_base64"), tx["qr_code"]),
            expires_at=parse_time(data.get("date_of_expiration")),
        )

    async def fetch(self, account: Account, gateway_charge_id: str) -> GatewayStatus:
        data = await call_json(self.client, self.name, "fetch", "GET",
                                   f"{self.base}/v1/payments/{gateway_charge_id}",
                                   headers=self._headers(account))
        raw = str(data.get("status", ""))
        try:
            amount = reais_to_cents(data["transaction_amount"]) \
                if data.get("transaction_amount") is not None else None
        except InvalidAmount as exc:
            raise GatewayError(f"mercadopago fetch: bad transaction_amount: {exc}") from exc
        payer = data.get("payer") or {}
        name = " ".join(p for p in (payer.get("first_name"), payer.get("last_name")) if p)
        refunded_at = None
        if raw in ("refunded", "charged_back"):
            refunded_at = parse_time(data.get("date_last_updated"))
        return GatewayStatus(
            gateway_charge_id=str(data.get("id", gateway_charge_id)),
            status=_STATUS.get(raw, "other"),
            raw_status=raw,
            amount_cents=amount,
            paid_at=parse_time(data.get("date_approved")),
            refunded_at=refunded_at,
            payer=Payer(
                name=name or None,
                email=payer.get("email"),
                document=(payer.get("identification") or {}).get("number"),
            ) if payer else None,
        )

    def claimed_charge_id(self, account: Account, webhook: WebhookRequest) -> str:
        body = webhook.json if isinstance(webhook.json, dict) else {}
        kind = webhook.query.get("type") or body.get("type") or webhook.query.get("topic")
        data_id = webhook.query.get("data.id") or str((body.get("data") or {}).get("id") or "")
        if not account.webhook_secret:
            raise WebhookForged("no webhook secret configured for this account: cannot verify")
        try:
            verify_mercadopago(account.webhook_secret, webhook.headers.get("x-signature"),
                               data_id or None, webhook.headers.get("x-request-id"))
        except SignatureError as exc:
            raise WebhookForged(str(exc)) from exc
        if kind != "payment":
            raise WebhookIgnored(f"notification type {kind!r} is not a payment")
        if not data_id:
            raise WebhookForged("notification has no data.id")
        return data_id
