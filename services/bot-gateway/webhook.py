"""`POST /webhook/telegram/{bot_id}`: decode, hand to WebhookIngest, encode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from grim_bot_gateway.ingest import WebhookIngest

from grim.web import error_response

MAX_BODY = 1 << 20
_OK = b'{"ok":true}'


def webhook_router(ingest: Callable[[], WebhookIngest]) -> APIRouter:
    router = APIRouter(tags=["telegram"])

    @router.post(
        "/webhook/telegram/{bot_id}",
        summary="Telegram webhook: accept one update (stored in Kafka before the 200)",
        responses={
            200: {"description": "Accepted, or a duplicate of an accepted update"},
            400: {"description": "Not a Telegram update"},
            401: {"description": "Missing or wrong X-Telegram-Bot-Api-Secret-Token"},
            404: {"description": "Unknown bot"},
            413: {"description": "Body too large"},
            503: {"description": "Could not store the update; Telegram retries"},
        },
    )
    async def telegram_webhook(
        request: Request,
        bot_id: Annotated[int, Path(description="Telegram bot id")],
        secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return error_response(413, "payload_too_large", "an update is at most 1 MiB")
        body = await request.body()
        if len(body) > MAX_BODY:
            return error_response(413, "payload_too_large", "an update is at most 1 MiB")
        result = await ingest().handle(bot_id, secret, body)
        if result.status == 200:
            return Response(_OK, media_type="application/json")
        response: JSONResponse = error_response(result.status, result.outcome, result.detail)
        if result.status == 503:
            response.headers["Retry-After"] = "1"
        return response

    return router
