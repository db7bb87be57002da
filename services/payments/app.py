"""The payments HTTP service: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from grim.checks import postgres_check
from grim.web import bearer_auth, install_error_handlers, install_http_metrics, ops_router

from . import admin, api
from .bootstrap import Payments, build
from .settings import PaymentsSettings


def create_app(
    settings: PaymentsSettings | None = None,
    *,
    http: httpx.AsyncClient | None = None,
    run_background: bool = True,
) -> FastAPI:
    """The app; its lifespan opens the pool and runs the outbox relay and expiry loop.

    Tests pass `http` (a client wired to fake gateways) and may turn the
    background loops off to drive the relay themselves.
    """
    settings = settings or PaymentsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        payments = await build(settings, http=http)
        app.state.payments = payments
        if run_background:
            payments.start_background()
        try:
            yield
        finally:
            await payments.close()

    app = FastAPI(title="Grim payments", version="1", lifespan=lifespan)
    install_error_handlers(app)
    install_http_metrics(app, "payments")

    def checks():  # type: ignore[no-untyped-def]
        payments: Payments | None = getattr(app.state, "payments", None)
        if payments is None:
            return {}

        async def kafka() -> None:
            if not payments.producer_started:
                raise RuntimeError("producer not connected yet")
            await payments.producer.client.fetch_all_metadata()

        return {"postgres": postgres_check(payments.pool), "kafka": kafka}

    app.include_router(ops_router(checks))
    app.include_router(api.router(settings.service_token.get_secret_value()))
    require_admin = bearer_auth(lambda: settings.admin_token.get_secret_value(), "admin")
    app.include_router(admin.router, prefix="/admin", dependencies=[Depends(require_admin)])
    return app
