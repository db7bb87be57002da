"""HTTP entrypoint of the bot gateway: the Telegram webhook plus health and metrics.

The same process runs the telegram-updates consumer (the funnel), the `paid`
consumer (deliveries) and the outbox relay, started by the lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from grim.web import install_error_handlers, install_http_metrics, ops_router
from grim_bot_gateway import bootstrap
from grim_bot_gateway.settings import BotGatewaySettings
from grim_bot_gateway.webhook import install_webhook_fast_route, webhook_router


def create_app(settings: BotGatewaySettings | None = None) -> FastAPI:
    settings = settings or BotGatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await bootstrap.start(settings)
        app.state.runtime = rt
        app.state.db = rt.db
        app.state.settings = settings
        try:
            yield
        finally:
            await bootstrap.stop(rt)

    app = FastAPI(title="Grim bot gateway", lifespan=lifespan)
    install_error_handlers(app)
    # Telegram updates are nearly all the traffic: served ahead of FastAPI's machinery.
    install_webhook_fast_route(app, lambda: app.state.runtime.ingest)
    install_http_metrics(app, "bot_gateway")
    app.include_router(ops_router(lambda: app.state.runtime.checks()))
    app.include_router(webhook_router(lambda: app.state.runtime.ingest))
    return app
