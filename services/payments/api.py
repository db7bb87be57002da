"""HTTP entrypoints: decode, call a service, encode. Nothing else lives here."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from grim.web import bearer_auth

from . import delivery
from .bootstrap import Payments
from .charges import ChargeFailed, CreateCharge, IdempotencyConflict, ProductNotFound
from .gateway_base import GATEWAYS, WebhookRequest
from .metrics import DELIVERIES
from .webhooks import Forged, GatewayUnavailable, UnknownAccount, Unverifiable

MAX_WEBHOOK_BYTES = 64 * 1024


def services(request: Request) -> Payments:
    return request.app.state.payments


Services = Annotated[Payments, Depends(services)]


class ChargePublic(BaseModel):
    payment_id: str
    status: str
    amount_cents: int
    currency: str
    product_name: str
    pix_copy_paste: str
    qr_png_base64: str
    expires_at: datetime


def router(service_token: str) -> APIRouter:
    api = APIRouter()
    require_service = bearer_auth(lambda: service_token, "payments")

    @api.post("/charges", response_model=ChargePublic, status_code=201,
              dependencies=[Depends(require_service)],
              responses={200: {"description": "Same idempotency key: the existing charge"},
                         404: {"description": "Unknown product"},
                         409: {"description": "Key reused with a different body"},
                         502: {"description": "The gateway did not issue the charge"}})
    async def create_charge(body: CreateCharge, response: Response, svc: Services
                            ) -> ChargePublic:
        """Create (or return, for a repeated idempotency key) a PIX charge."""
        try:
            result = await svc.charges.create(body)
        except ProductNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except IdempotencyConflict as exc:
            raise HTTPException(409, str(exc)) from exc
        except ChargeFailed as exc:
            raise HTTPException(502, f"gateway error: {exc}") from exc
        if not result.created:
            response.status_code = 200
        c = result.charge
        return ChargePublic(
            payment_id=c.id, status=c.status, amount_cents=c.amount_cents, currency=c.currency,
            product_name=c.product_name, pix_copy_paste=c.pix_copy_paste or "",
            qr_png_base64=c.qr_png_base64 or "", expires_at=c.expires_at,
        )

    @api.post("/webhooks/{gateway}/{account_id}",
              responses={401: {"description": "Bad or missing signature"},
                         403: {"description": "The gateway does not confirm the charge"},
                         404: {"description": "Unknown gateway account"},
                         503: {"description": "Gateway unreachable for re-fetch: retry"}})
    async def webhook(gateway: str, account_id: int, request: Request, svc: Services
                      ) -> dict[str, str]:
        """Gateway notifications: verified (signature and/or re-fetch), applied idempotently."""
        if gateway not in GATEWAYS:
            raise HTTPException(404, f"unknown gateway {gateway!r}")
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            raise HTTPException(413, "webhook body too large")
        notification = WebhookRequest(
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params), body=body, json=_decode(body),
        )
        try:
            outcome = await svc.webhooks.handle(gateway, account_id, notification)
        except UnknownAccount as exc:
            raise HTTPException(404, str(exc)) from exc
        except Forged as exc:
            raise HTTPException(401, f"forged webhook: {exc}") from exc
        except Unverifiable as exc:
            raise HTTPException(403, f"unverifiable webhook: {exc}") from exc
        except GatewayUnavailable as exc:
            raise HTTPException(503, f"cannot verify now, retry later: {exc}") from exc
        return {"status": outcome}

    @api.get("/delivery/{token}", response_class=HTMLResponse,
             responses={404: {"description": "Unknown or revoked link"}})
    async def open_delivery(token: str, svc: Services) -> HTMLResponse:
        """The buyer's delivery page; the first open announces DeliveryOpened."""
        found = await delivery.open_delivery(svc.pool, svc.outbox, token)
        if found is None:
            DELIVERIES.labels("unknown").inc()
            raise HTTPException(404, "this delivery link is not valid")
        DELIVERIES.labels("first" if found.first_open else "repeat").inc()
        return HTMLResponse(_page(found.product_name, found.content),
                            headers={"Cache-Control": "no-store",
                                     "Referrer-Policy": "no-referrer"})

    return api


def _decode(body: bytes) -> object:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # PushinPay may post form-encoded notifications.
        try:
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return None


def _page(product: str, content: str) -> str:
    name, text = html.escape(product), html.escape(content)
    return (
        "<!doctype html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<meta name=\"robots\" content=\"noindex\"><title>{name}</title></head>"
        f"<body><main><h1>{name}</h1><p>Obrigado pela compra!</p>"
        f"<pre style=\"white-space:pre-wrap\">{text}</pre></main></body></html>"
    )

