"""The sandbox PIX gateway: a small local stand-in for a real gateway (demo, e2e).

It issues valid static BR Codes and, when a payment is simulated, fires a
webhook signed with HMAC-SHA256 (`X-Sandbox-Signature: t=<unix>,v1=<hex of
HMAC(secret, "<t>.<body>")>`) to the charge's webhook_url, retrying a few
times like a real gateway. Merchant calls need `Authorization: Bearer <key>`;
a charge is only visible to the key that created it. Simulating a payment is
the payer's action and needs no merchant key.
"""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Header, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from grim.web import install_error_handlers
from grim_payments.brcode import build_static
from grim_payments.signatures import SANDBOX_HEADER, sign_sandbox


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(gt=0, le=100_000_000)
    description: str = Field(default="", max_length=140)
    expires_at: AwareDatetime
    webhook_url: str = Field(pattern=r"^https?://", max_length=500)
    pix_key: str = Field(min_length=1, max_length=77)
    merchant_name: str = Field(min_length=1, max_length=100)
    merchant_city: str = Field(min_length=1, max_length=100)


class PayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    email: str | None = None
    document: str | None = None


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payer: PayerIn | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _png(code: str) -> str:
    import segno

    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=6, border=2)
    return base64.b64encode(buffer.getvalue()).decode()


class SandboxState:
    def __init__(self, webhook_secret: str, http: httpx.AsyncClient | None) -> None:
        self.webhook_secret = webhook_secret
        self.http = http
        self.charges: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.retry_delays = (0.5, 2.0, 5.0, 15.0)
        self.tasks: set[asyncio.Task[None]] = set()

    def find(self, charge_id: str) -> dict[str, Any] | None:
        if charge_id in self.charges:
            return self.charges[charge_id]
        return next((c for c in self.charges.values() if c["external_id"] == charge_id), None)

    async def send_webhook(self, charge: dict[str, Any], kind: str) -> dict[str, Any]:
        body = orjson.dumps({
            "id": f"evt_{uuid.uuid4().hex}", "type": f"charge.{kind}", "created_at": _now(),
            "data": {"id": charge["id"], "external_id": charge["external_id"],
                     "status": charge["status"]},
        })
        result = await self._post(charge["webhook_url"], body)
        if not (isinstance(result.get("status"), int) and result["status"] < 300):
            task = asyncio.create_task(self._retry(charge["webhook_url"], body))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return result

    async def _post(self, url: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json",
                   SANDBOX_HEADER: sign_sandbox(self.webhook_secret, body)}
        client = self.http or httpx.AsyncClient(timeout=10)
        try:
            response = await client.post(url, content=body, headers=headers)
            result: dict[str, Any] = {"url": url, "status": response.status_code}
        except httpx.HTTPError as exc:
            result = {"url": url, "status": f"{type(exc).__name__}: {exc}"}
        finally:
            if self.http is None:
                await client.aclose()
        self.deliveries.append(result)
        return result

    async def _retry(self, url: str, body: bytes) -> None:
        for delay in self.retry_delays:
            await asyncio.sleep(delay)
            result = await self._post(url, body)
            if isinstance(result["status"], int) and result["status"] < 300:
                return


def create_sandbox_app(
    webhook_secret: str = "sandbox-webhook-secret-change-me",
    *,
    http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The sandbox gateway app; `http` lets tests route its webhooks in-process."""
    app = FastAPI(title="Grim sandbox PIX gateway")
    install_error_handlers(app)
    state = SandboxState(webhook_secret, http)
    app.state.sandbox = state

    def merchant(authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or len(key) < 8:
            raise HTTPException(401, "Authorization: Bearer <api key> (8+ chars) required")
        return key

    def owned(charge_id: str, key: str) -> dict[str, Any]:
        charge = state.find(charge_id)
        if charge is None or state.owners[charge["id"]] != key:
            raise HTTPException(404, "charge not found")
        return charge

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/charges", status_code=201)
    async def create(body: ChargeIn, authorization: str | None = Header(default=None)
                     ) -> dict[str, Any]:
        key = merchant(authorization)
        for existing in state.charges.values():
            # external_id is the merchant's idempotency key.
            if existing["external_id"] == body.external_id and state.owners[existing["id"]] == key:
                return existing
        charge_id = f"sbx{uuid.uuid4().hex[:22]}"
        code = build_static(pix_key=body.pix_key, merchant_name=body.merchant_name,
                            merchant_city=body.merchant_city, amount_cents=body.amount_cents,
                            txid=charge_id, description=body.description or None)
        charge = {
            "id": charge_id, "external_id": body.external_id, "status": "pending",
            "amount_cents": body.amount_cents, "description": body.description,
            "br_code": code, "qr_code_base64": _png(code),
            "expires_at": body.expires_at.isoformat(), "webhook_url": body.webhook_url,
            "created_at": _now(), "paid_at": None, "refunded_at": None, "payer": None,
        }
        state.charges[charge_id] = charge
        state.owners[charge_id] = key
        return charge

    @app.get("/v1/charges/{charge_id}")
    async def get(charge_id: str, authorization: str | None = Header(default=None)
                  ) -> dict[str, Any]:
        return owned(charge_id, merchant(authorization))

    @app.post("/v1/charges/{charge_id}/simulate-payment")
    async def simulate(charge_id: str, body: SimulateIn | None = None) -> dict[str, Any]:
        """The payer pays: the charge becomes paid and a signed webhook is sent."""
        charge = state.find(charge_id)
        if charge is None:
            raise HTTPException(404, "charge not found")
        if charge["status"] != "pending":
            raise HTTPException(409, f"charge is {charge['status']}")
        charge.update(status="paid", paid_at=_now(),
                      payer=(body.payer.model_dump() if body and body.payer else None))
        return {"charge": charge, "webhook": await state.send_webhook(charge, "paid")}

    @app.post("/v1/charges/{charge_id}/refund")
    async def refund(charge_id: str, authorization: str | None = Header(default=None)
                     ) -> dict[str, Any]:
        charge = owned(charge_id, merchant(authorization))
        if charge["status"] != "paid":
            raise HTTPException(409, f"charge is {charge['status']}")
        charge.update(status="refunded", refunded_at=_now())
        return {"charge": charge, "webhook": await state.send_webhook(charge, "refunded")}

    @app.post("/v1/charges/{charge_id}/resend-webhook")
    async def resend(charge_id: str) -> dict[str, Any]:
        """Send the charge's current status again (gateways do; handlers must not care)."""
        charge = state.find(charge_id)
        if charge is None:
            raise HTTPException(404, "charge not found")
        return {"webhook": await state.send_webhook(charge, charge["status"])}

    @app.get("/v1/webhook-deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        return state.deliveries

    return app
