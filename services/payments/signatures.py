"""Webhook signature checks (pure): Mercado Pago's x-signature and the sandbox's.

Mercado Pago signs `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` with
HMAC-SHA256 and the application's secret, sent as `x-signature: ts=..,v1=..`.
Parts whose value is absent are left out of the manifest, and an alphanumeric
data.id is lower-cased, as its documentation says.
"""

from __future__ import annotations

import hashlib
import hmac
import time


class SignatureError(ValueError):
    """The webhook is not signed by whoever holds the secret."""


def parse_signature_header(header: str | None, ts_key: str = "ts") -> tuple[str, str]:
    if not header:
        raise SignatureError("missing signature header")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    ts, v1 = parts.get(ts_key), parts.get("v1")
    if not ts or not v1:
        raise SignatureError(f"signature header needs {ts_key}= and v1=")
    return ts, v1


def mercadopago_manifest(data_id: str | None, request_id: str | None, ts: str) -> str:
    manifest = ""
    if data_id:
        manifest += f"id:{data_id.lower() if data_id.isalnum() else data_id};"
    if request_id:
        manifest += f"request-id:{request_id};"
    return manifest + f"ts:{ts};"


def sign_mercadopago(secret: str, data_id: str, request_id: str, ts: str) -> str:
    manifest = mercadopago_manifest(data_id, request_id, ts)
    v1 = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={v1}"


def verify_mercadopago(
    secret: str, header: str | None, data_id: str | None, request_id: str | None
) -> None:
    ts, given = parse_signature_header(header, "ts")
    manifest = mercadopago_manifest(data_id, request_id, ts)
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise SignatureError("x-signature does not match")


SANDBOX_HEADER = "X-Sandbox-Signature"


def sign_sandbox(secret: str, body: bytes, ts: int | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    v1 = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={v1}"


def verify_sandbox(
    secret: str, header: str | None, body: bytes, *, now: float | None = None,
    tolerance: int = 300,
) -> None:
    ts, given = parse_signature_header(header, "t")
    if not ts.isdigit():
        raise SignatureError("t= must be a unix timestamp")
    current = time.time() if now is None else now
    if abs(current - int(ts)) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance window (replay?)")
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise SignatureError(f"{SANDBOX_HEADER} does not match")
