"""The one interface every PIX gateway adapter implements, and its value types.

Adapters translate between Grim (cents, UTC, normalised statuses) and one
gateway's documented API; they hold no state and no connections of their own
(the shared httpx client comes from bootstrap).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from grim_schemas import Payer

from .metrics import GATEWAY_CALLS, GATEWAY_LATENCY

GATEWAYS = ("mercadopago", "pushinpay", "woovi", "sandbox")


@dataclass(frozen=True)
class Account:
    """A seller's gateway account, secrets decrypted for the duration of a call."""

    id: int
    name: str
    gateway: str
    credentials: Mapping[str, str]
    webhook_secret: str | None = None
    pix_key: str | None = None

    def credential(self, key: str) -> str:
        value = self.credentials.get(key)
        if not value:
            raise GatewayConfigError(f"account {self.name!r} has no credential {key!r}")
        return value


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str
    amount_cents: int
    description: str
    expires_at: datetime
    notification_url: str


@dataclass(frozen=True)
class CreatedCharge:
    gateway_charge_id: str
    pix_copy_paste: str
    qr_png_base64: str | None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class GatewayStatus:
    """A charge as the gateway reports it, with the status normalised.

    status: pending | paid | refunded | charged_back | expired | other
    """

    gateway_charge_id: str
    status: str
    raw_status: str
    amount_cents: int | None = None
    paid_at: datetime | None = None
    refunded_at: datetime | None = None
    payer: Payer | None = None


@dataclass(frozen=True)
class WebhookRequest:
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    json: Any = field(default=None)


class GatewayError(Exception):
    """The gateway did not do what we asked (network, 5xx, refusal)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ChargeNotFound(GatewayError):
    """The gateway does not know this charge (for this account)."""


class GatewayConfigError(GatewayError):
    """The account lacks something the gateway needs (a credential, a PIX key)."""


class WebhookForged(Exception):
    """The webhook's signature is missing or wrong."""


class WebhookIgnored(Exception):
    """A well-formed notification about something we do not track (tests, other topics)."""


class GatewayAdapter(Protocol):
    name: str

    async def create_charge(self, account: Account, request: ChargeRequest) -> CreatedCharge: ...

    async def fetch(self, account: Account, gateway_charge_id: str) -> GatewayStatus: ...

    def claimed_charge_id(self, account: Account, webhook: WebhookRequest) -> str:
        """The charge a webhook talks about, after checking its signature where one exists.

        The claim is never trusted as such: the caller re-fetches the charge.
        """
        ...


async def call(
    client: httpx.AsyncClient, gateway: str, operation: str, method: str, url: str,
    **kwargs: Any,
) -> httpx.Response:
    """One gateway call, timed and with transport failures turned into GatewayError."""
    started = time.perf_counter()
    outcome = "error"
    try:
        response = await client.request(method, url, **kwargs)
        outcome = str(response.status_code // 100) + "xx"
        return response
    except httpx.HTTPError as exc:
        raise GatewayError(f"{gateway} {operation}: {type(exc).__name__}: {exc}") from exc
    finally:
        GATEWAY_LATENCY.labels(gateway, operation).observe(time.perf_counter() - started)
        GATEWAY_CALLS.labels(gateway, operation, outcome).inc()


def raise_for(gateway: str, operation: str, response: httpx.Response) -> None:
    if response.status_code == 404:
        raise ChargeNotFound(f"{gateway} {operation}: not found", status=404)
    if response.status_code >= 400:
        raise GatewayError(
            f"{gateway} {operation}: HTTP {response.status_code}: {response.text[:300]}",
            status=response.status_code,
        )


def json_of(gateway: str, operation: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise GatewayError(f"{gateway} {operation}: response is not JSON") from exc
    if not isinstance(body, dict):
        raise GatewayError(f"{gateway} {operation}: unexpected response shape")
    return body


async def call_json(
    client: httpx.AsyncClient, gateway: str, operation: str, method: str, url: str,
    **kwargs: Any,
) -> dict[str, Any]:
    """A gateway call whose answer must be a 2xx JSON object (404 -> ChargeNotFound)."""
    response = await call(client, gateway, operation, method, url, **kwargs)
    raise_for(gateway, operation, response)
    return json_of(gateway, operation, response)


def png_base64(gateway_value: str | None, copy_paste: str) -> str:
    """The QR image as bare base64 PNG: the gateway's when it sent one, else drawn here."""
    if gateway_value:
        return gateway_value.split("base64,", 1)[-1]
    import segno

    buffer = io.BytesIO()
    segno.make(copy_paste, error="m").save(buffer, kind="png", scale=6, border=2)
    return base64.b64encode(buffer.getvalue()).decode()


def parse_time(value: object) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed
