"""Telegram Bot API client: httpx, rate limits, retries. Tokens never reach the logs.

`TelegramUnavailable` is a ConnectionError on purpose: consumer loops treat it as
transient and retry the batch later instead of losing the update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from grim_bot_gateway.funnel import Outgoing
from grim_bot_gateway.ratelimit import RateLimiter
from grim_bot_gateway.retry import Decision, classify_network_error, classify_response
from prometheus_client import Counter, Histogram

log = logging.getLogger(__name__)

KNOWN_METHODS = frozenset({
    "getMe", "sendMessage", "sendPhoto", "sendVideo", "sendAnimation", "answerCallbackQuery",
    "setWebhook", "getWebhookInfo", "deleteWebhook",
})
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendVideo", "sendAnimation"})
CALLS = Counter(
    "grim_bot_gateway_telegram_calls_total", "Telegram Bot API calls by method and outcome",
    ["method", "outcome"],
)
LATENCY = Histogram(
    "grim_bot_gateway_telegram_call_duration_seconds", "Telegram Bot API call latency",
    ["method"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class TelegramError(Exception):
    """Telegram refused the call for good (400, 401, 404...): retrying would not help."""

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"{method}: {reason}")
        self.method = method
        self.reason = reason


class BotBlocked(TelegramError):
    """403: the user blocked the bot (or is gone); record it, do not retry."""


class TelegramUnavailable(ConnectionError):
    """Retries exhausted on 429/5xx/network errors."""


class TelegramClient:
    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        limiter: RateLimiter,
        *,
        max_attempts: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep

    async def send(self, bot_id: int, token: str, message: Outgoing) -> Any:
        chat_id = message.params.get("chat_id")
        return await self.call(bot_id, token, message.method, message.params,
                                upload=message.upload,
                                chat_id=chat_id if isinstance(chat_id, int) else None)

    async def call(
        self,
        bot_id: int,
        token: str,
        method: str,
        params: dict[str, Any],
        *,
        upload: tuple[str, str, bytes] | None = None,
        chat_id: int | None = None,
    ) -> Any:
        """Call `method`; returns Telegram's `result`. Raises BotBlocked, TelegramError or
        TelegramUnavailable."""
        label = method if method in KNOWN_METHODS else "other"
        url = f"{self.base_url}/bot{token}/{method}"
        for attempt in range(1, self.max_attempts + 1):
            if method in SEND_METHODS:
                await self.limiter.acquire(bot_id, chat_id)
            decision, body = await self._attempt(url, label, params, upload, attempt)
            if decision.verdict == "ok":
                CALLS.labels(label, "ok").inc()
                return body.get("result")
            if decision.verdict == "blocked":
                CALLS.labels(label, "blocked").inc()
                raise BotBlocked(method, decision.reason)
            if decision.verdict == "failed":
                CALLS.labels(label, "failed").inc()
                log.warning("telegram %s refused: %s", method, decision.reason,
                            extra={"bot_id": bot_id})
                raise TelegramError(method, decision.reason)
            CALLS.labels(label, "retried").inc()
            if decision.reason.startswith("429"):
                self.limiter.push_back(bot_id, chat_id, decision.delay)
            if attempt < self.max_attempts:
                log.info("telegram %s: %s; retry in %.1fs", method, decision.reason,
                         decision.delay, extra={"bot_id": bot_id})
                await self.sleep(decision.delay)
        CALLS.labels(label, "unavailable").inc()
        raise TelegramUnavailable(f"telegram {method}: gave up after {self.max_attempts} attempts")

    async def _attempt(
        self, url: str, label: str, params: dict[str, Any],
        upload: tuple[str, str, bytes] | None, attempt: int,
    ) -> tuple[Decision, Any]:
        try:
            with LATENCY.labels(label).time():
                if upload is None:
                    response = await self.http.post(
                        url, content=orjson.dumps(params),
                        headers={"Content-Type": "application/json"},
                    )
                else:
                    field, filename, data = upload
                    form = {k: v if isinstance(v, str) else orjson.dumps(v).decode()
                            for k, v in params.items()}
                    response = await self.http.post(
                        url, data=form, files={field: (filename, data, "image/png")}
                    )
        except httpx.HTTPError as exc:
            # The exception text may carry the URL, hence the token: log its type only.
            log.info("telegram call failed: %s", type(exc).__name__)
            return classify_network_error(attempt, self.backoff), None
        try:
            body = response.json()
        except ValueError:
            body = None
        return classify_response(response.status_code, body, attempt, self.backoff), body
