"""Strict local fakes of Mercado Pago, PushinPay and Woovi/OpenPix (tests, offline runs).

Each validates what the real API documents (auth header, required fields,
types, amount units), records every call, lets a test change a charge's status
as the gateway would, and can inject faults: `fake.fail_next.append(503)`
makes the next call answer 503.
"""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from grim_payments.brcode import build_static


@dataclass
class FakeGateway:
    name: str
    tokens: set[str]
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    idempotency: dict[str, str] = field(default_factory=dict)

    def creations(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == "POST"]


def _png(code: str) -> str:
    import segno

    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=3, border=1)
    return base64.b64encode(buffer.getvalue()).decode()


def _code(cents: int, txid: str) -> str:
    return build_static(pix_key="fake@gateway.test", merchant_name="FAKE GATEWAY",
                        merchant_city="SAO PAULO", amount_cents=cents,
                        txid="".join(ch for ch in txid if ch.isalnum())[:25])


def _now(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat(timespec="milliseconds")


async def _record(fake: FakeGateway, request: Request) -> tuple[Any, JSONResponse | None]:
    raw = await request.body()
    body: Any = None
    if raw:
        try:
            body = await request.json()
        except ValueError:
            body = None
    fake.calls.append({"method": request.method, "path": request.url.path,
                       "headers": dict(request.headers), "body": body})
    if fake.fail_next:
        status = fake.fail_next.pop(0)
        return body, JSONResponse({"message": "injected failure", "status": status}, status)
    if raw and body is None:
        return body, JSONResponse({"message": "invalid JSON"}, 400)
    return body, None


def mercadopago_app(tokens: set[str]) -> FastAPI:
    app = FastAPI()
    fake = FakeGateway("mercadopago", tokens)
    app.state.fake = fake

    def auth(request: Request) -> JSONResponse | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in fake.tokens:
            return JSONResponse({"message": "invalid access token", "error": "unauthorized",
                                 "status": 401}, 401)
        return None

    def bad(message: str) -> JSONResponse:
        return JSONResponse({"message": message, "error": "bad_request", "status": 400,
                             "cause": [{"code": 1, "description": message}]}, 400)

    @app.post("/v1/payments")
    async def create(request: Request) -> JSONResponse:
        body, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        key = request.headers.get("x-idempotency-key")
        if not key:
            return bad("header X-Idempotency-Key is required")
        if not isinstance(body, dict):
            return bad("body must be a JSON object")
        amount = body.get("transaction_amount")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            return bad("transaction_amount must be a number (reais)")
        try:
            reais = Decimal(str(amount))
        except InvalidOperation:
            return bad("transaction_amount is not a number")
        if reais <= 0 or reais != reais.quantize(Decimal("0.01")):
            return bad("transaction_amount must be positive with at most 2 decimals")
        if body.get("payment_method_id") != "pix":
            return bad("payment_method_id must be pix")
        payer = body.get("payer")
        if not isinstance(payer, dict) or "@" not in str(payer.get("email", "")):
            return bad("payer.email is required")
        expiration = body.get("date_of_expiration")
        if expiration is not None:
            try:
                if datetime.fromisoformat(expiration).tzinfo is None:
                    return bad("date_of_expiration needs a UTC offset")
            except (TypeError, ValueError):
                return bad("date_of_expiration must be ISO-8601")
        if key in fake.idempotency:
            return JSONResponse(fake.charges[fake.idempotency[key]], 201)
        payment_id = str(10_000_000_000 + len(fake.charges) + 1)
        code = _code(int(reais * 100), f"MP{payment_id}")
        payment = {
            "id": int(payment_id), "status": "pending", "status_detail": "pending_waiting_transfer",
            "transaction_amount": amount, "currency_id": "BRL", "payment_method_id": "pix",
            "description": body.get("description"), "external_reference":
            body.get("external_reference"), "date_created": _now(), "date_approved": None,
            "date_last_updated": _now(), "date_of_expiration": expiration or _now(
                timedelta(hours=24)),
            "payer": {"email": payer["email"], "first_name": None, "last_name": None,
                      "identification": {"type": None, "number": None}},
            "point_of_interaction": {"type": "PIX", "transaction_data": {
                "qr_code": code, "qr_code_base64": _png(code),
                "ticket_url": f"https://fake.mercadopago.test/payments/{payment_id}/ticket"}},
        }
        fake.charges[payment_id] = payment
        fake.idempotency[key] = payment_id
        return JSONResponse(payment, 201)

    @app.get("/v1/payments/{payment_id}")
    async def get(payment_id: str, request: Request) -> JSONResponse:
        _, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        if payment_id not in fake.charges:
            return JSONResponse({"message": "Payment not found", "error": "not_found",
                                 "status": 404, "cause": []}, 404)
        return JSONResponse(fake.charges[payment_id])

    return app


def mercadopago_pay(app: FastAPI, payment_id: str, status: str = "approved",
                    payer: dict[str, Any] | None = None) -> None:
    """Move a fake Mercado Pago payment as the real one would."""
    payment = app.state.fake.charges[payment_id]
    payment["status"] = status
    payment["status_detail"] = {"approved": "accredited"}.get(status, status)
    payment["date_last_updated"] = _now()
    if status == "approved":
        payment["date_approved"] = _now()
    if payer:
        payment["payer"].update(payer)


def pushinpay_app(tokens: set[str]) -> FastAPI:
    app = FastAPI()
    fake = FakeGateway("pushinpay", tokens)
    app.state.fake = fake

    def auth(request: Request) -> JSONResponse | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in fake.tokens:
            return JSONResponse({"message": "Unauthenticated."}, 401)
        if "application/json" not in request.headers.get("accept", ""):
            return JSONResponse({"message": "Accept: application/json is required"}, 406)
        return None

    @app.post("/pix/cashIn")
    async def cash_in(request: Request) -> JSONResponse:
        body, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        value = body.get("value") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return JSONResponse({"message": "O campo value deve ser um inteiro (centavos).",
                                 "errors": {"value": ["integer"]}}, 422)
        if value < 50:
            return JSONResponse({"message": "O campo value deve ser no mínimo 50.",
                                 "errors": {"value": ["O campo value deve ser no mínimo 50."]}},
                                422)
        tx_id = str(uuid.uuid4()).upper()
        code = _code(value, tx_id)
        tx = {"id": tx_id, "qr_code": code, "status": "created", "value": value,
              "webhook_url": body.get("webhook_url"),
              "qr_code_base64": f"data:image/png;base64,{_png(code)}", "webhook": None,
              "split_rules": [], "end_to_end_id": None, "payer_name": None,
              "payer_national_registration": None, "created_at": _now(), "updated_at": _now()}
        fake.charges[tx_id.lower()] = tx
        return JSONResponse(tx)

    @app.get("/transactions/{tx_id}")
    async def get(tx_id: str, request: Request) -> JSONResponse:
        _, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        tx = fake.charges.get(tx_id.lower())
        if tx is None:
            return JSONResponse([], 404)
        return JSONResponse({**tx, "value": str(tx["value"]), "payment_type": "pix"})

    return app


def pushinpay_pay(app: FastAPI, tx_id: str, status: str = "paid",
                  payer_name: str | None = None, document: str | None = None) -> None:
    tx = app.state.fake.charges[tx_id.lower()]
    tx.update(status=status, updated_at=_now(), payer_name=payer_name,
              payer_national_registration=document)


def woovi_app(app_ids: set[str]) -> FastAPI:
    app = FastAPI()
    fake = FakeGateway("woovi", app_ids)
    app.state.fake = fake

    def auth(request: Request) -> JSONResponse | None:
        # The App ID goes bare: "Bearer <id>" is refused by the real API too.
        if request.headers.get("authorization", "") not in fake.tokens:
            return JSONResponse({"error": "appID inválido"}, 401)
        return None

    @app.post("/api/v1/charge")
    async def create(request: Request) -> JSONResponse:
        body, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, 400)
        correlation, value = body.get("correlationID"), body.get("value")
        if not isinstance(correlation, str) or not correlation:
            return JSONResponse({"error": "correlationID é obrigatório"}, 400)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return JSONResponse({"error": "value deve ser um inteiro em centavos"}, 400)
        if len(str(body.get("comment", ""))) > 140:
            return JSONResponse({"error": "comment excede 140 caracteres"}, 400)
        expires_in = body.get("expiresIn", 86400)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            return JSONResponse({"error": "expiresIn deve ser inteiro (segundos)"}, 400)
        if correlation not in fake.charges:
            code = _code(value, correlation)
            fake.charges[correlation] = {
                "correlationID": correlation, "value": value, "status": "ACTIVE",
                "comment": body.get("comment"), "brCode": code,
                "qrCodeImage": f"https://fake.woovi.test/openpix/charge/brcode/image/{correlation}.png",
                "transactionID": uuid.uuid4().hex, "identifier": uuid.uuid4().hex,
                "expiresIn": expires_in, "expiresDate": _now(timedelta(seconds=expires_in)),
                "createdAt": _now(), "updatedAt": _now(), "paidAt": None, "customer": None,
            }
        charge = fake.charges[correlation]
        return JSONResponse({"charge": charge, "correlationID": correlation,
                             "brCode": charge["brCode"]})

    @app.get("/api/v1/charge/{charge_id}")
    async def get(charge_id: str, request: Request) -> JSONResponse:
        _, failure = await _record(fake, request)
        if failure or (failure := auth(request)):
            return failure
        if charge_id not in fake.charges:
            return JSONResponse({"error": "Cobrança não encontrada"}, 404)
        return JSONResponse({"charge": fake.charges[charge_id]})

    return app


def woovi_pay(app: FastAPI, correlation_id: str, status: str = "COMPLETED",
              customer: dict[str, Any] | None = None) -> None:
    charge = app.state.fake.charges[correlation_id]
    charge.update(status=status, updatedAt=_now(),
                  paidAt=_now() if status == "COMPLETED" else None, customer=customer)
