"""`POST /webhook/telegram/{bot_id}`: decode, hand to WebhookIngest, encode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from grim_bot_gateway.ingest import WebhookIngest
from starlette.types import Receive, Scope

from grim.fastroute import install_fast_route
from grim.web import error_response

MAX_BODY = 1 << 20
TEMPLATE = "/webhook/telegram/{bot_id}"
_OK = b'{"ok":true}'


async def answer(ingest: WebhookIngest, request: Request, bot_id: int) -> Response:
    """The webhook's answer to one request (both routes below call this)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        return error_response(413, "payload_too_large", "an update is at most 1 MiB")
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(413, "payload_too_large", "an update is at most 1 MiB")
    secret = request.headers.get("x-telegram-bot-api-secret-token")
    result = await ingest.handle(bot_id, secret, body)
    if result.status == 200:
        return Response(_OK, media_type="application/json")
    response: JSONResponse = error_response(result.status, result.outcome, result.detail)
    if result.status == 503:
        response.headers["Retry-After"] = "1"
    return response


def webhook_router(ingest: Callable[[], WebhookIngest]) -> APIRouter:
    router = APIRouter(tags=["telegram"])

    @router.post(
        TEMPLATE,
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
        # `secret` documents the header; answer() reads it from the request itself.
        return await answer(ingest(), request, bot_id)

    return router


def install_webhook_fast_route(app: FastAPI, ingest: Callable[[], WebhookIngest]) -> None:
    """Updates skip FastAPI's routing; a bot id that is not a number still gets its 422."""

    async def handler(scope: Scope, receive: Receive, bot_id: str) -> Response:
        return await answer(ingest(), Request(scope, receive), int(bot_id))

    install_fast_route(app, "bot_gateway", TEMPLATE, ("POST",), handler,
                       accept=lambda p: p.isascii() and p.isdigit() and len(p) <= 19)
