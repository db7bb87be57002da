"""The one admin API: every area's configuration behind one bearer token.

Each area owns its router (pools and pixels, bots and funnels, products and
gateway accounts, the CAPI dead-letter queue); this app only wires them to a
database pool and enforces `Authorization: Bearer GRIM_ADMIN_TOKEN`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from grim.checks import postgres_check
from grim.crypto import SecretBox
from grim.db import close_pool, create_pool
from grim.settings import GrimSettings
from grim.web import bearer_auth, install_error_handlers, install_http_metrics, ops_router


def admin_routers() -> list:  # type: ignore[type-arg]
    from grim_bot_gateway.admin import router as bots
    from grim_payments.admin import router as payments
    from grim_redirect.admin import router as pools

    return [pools, bots, payments]


def create_app(settings: GrimSettings | None = None) -> FastAPI:
    settings = settings or GrimSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from grim_payments.admin import AdminContext

        pool = await create_pool(settings.database_url, max_size=5)
        app.state.db = pool
        app.state.settings = settings
        app.state.payments_admin = AdminContext(
            pool, SecretBox(settings.secret_key.get_secret_value())
        )
        try:
            yield
        finally:
            await close_pool(pool)

    app = FastAPI(
        title="Grim admin",
        description=(
            "Seller configuration: pools and pixels, bots and funnels, products and "
            "gateway accounts. Every route needs `Authorization: Bearer <GRIM_ADMIN_TOKEN>`."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_http_metrics(app, "admin")
    app.include_router(ops_router(lambda: {"postgres": postgres_check(app.state.db)}))
    require_admin = bearer_auth(lambda: settings.admin_token.get_secret_value(), "admin API")
    for router in admin_routers():
        app.include_router(router, prefix="/admin", dependencies=[Depends(require_admin)])
    return app
