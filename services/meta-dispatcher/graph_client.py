"""httpx adapter for `POST /{version}/{pixel_id}/events` of the Graph API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from .classify import Outcome, classify_exception, classify_response
from .metrics import GRAPH_LATENCY, GRAPH_REQUESTS


class GraphClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, api_version: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version

    def url(self, pixel_id: str) -> str:
        return f"{self.base_url}/{self.api_version}/{pixel_id}/events"

    async def send_events(
        self,
        pixel_id: str,
        access_token: str,
        events: list[dict[str, Any]],
        test_event_code: str | None = None,
    ) -> Outcome:
        """One request; never raises for network or HTTP failures, it classifies them."""
        # A JSON body (which Graph accepts like the SDK's form fields) keeps the
        # token out of URLs and avoids form-encoding a large JSON string.
        body: dict[str, Any] = {"data": events, "access_token": access_token}
        if test_event_code:
            body["test_event_code"] = test_event_code
        started = time.perf_counter()
        try:
            response = await self.client.post(
                self.url(pixel_id),
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            outcome = classify_exception(exc)
        else:
            try:
                parsed = orjson.loads(response.content) if response.content else None
            except orjson.JSONDecodeError:
                parsed = None
            outcome = classify_response(response.status_code, parsed)
        GRAPH_LATENCY.labels(outcome.verdict.value).observe(time.perf_counter() - started)
        GRAPH_REQUESTS.labels(outcome.verdict.value).inc()
        return outcome
