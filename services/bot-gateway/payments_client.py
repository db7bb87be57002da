"""Client of the payments service's `POST /charges` (bearer GRIM_SERVICE_TOKEN)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import Counter

log = logging.getLogger(__name__)

CHARGES = Counter(
    "grim_bot_gateway_charge_requests_total", "PIX charge requests to payments by outcome",
    ["outcome"],
)
CHARGE_FIELDS = ("payment_id", "status", "amount_cents", "currency", "pix_copy_paste",
                 "expires_at")


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    product_id: int
    bot_id: int
    telegram_user_id: int
    chat_id: int
    tracking_token: str | None

    def body(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.idempotency_key, "product_id": self.product_id,
            "bot_id": self.bot_id, "telegram_user_id": self.telegram_user_id,
            "chat_id": self.chat_id, "tracking_token": self.tracking_token,
        }


class ChargeRefused(Exception):
    """Payments answered 4xx (unknown product, key reused with another body...)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class PaymentsUnavailable(ConnectionError):
    """Payments or its gateway failed (network, 5xx, 502) after the retries."""


class PaymentsClient:
    def __init__(
        self,
        base_url: str,
        service_token: str,
        http: httpx.AsyncClient,
        *,
        max_attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = base_url.rstrip("/") + "/charges"
        self.headers = {"Authorization": f"Bearer {service_token}"}
        self.http = http
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep

    async def create_charge(self, request: ChargeRequest) -> dict[str, Any]:
        """The charge (new: 201, same key: 200). Retries are safe: the key is idempotent."""
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self.http.post(self.url, json=request.body(),
                                                headers=self.headers)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code in (200, 201):
                    charge = response.json()
                    missing = [f for f in CHARGE_FIELDS if f not in charge]
                    if missing:
                        raise PaymentsUnavailable(f"charge response lacks {missing}")
                    CHARGES.labels("created" if response.status_code == 201 else "same").inc()
                    return charge
                if 400 <= response.status_code < 500:
                    CHARGES.labels(f"refused_{response.status_code}").inc()
                    raise ChargeRefused(response.status_code, response.text[:300])
                last = f"HTTP {response.status_code}"
            if attempt < self.max_attempts:
                await self.sleep(self.backoff * 2 ** (attempt - 1))
        CHARGES.labels("unavailable").inc()
        raise PaymentsUnavailable(f"payments: {last}")
