"""The worker's small HTTP surface: /healthz, /readyz, /metrics."""

from __future__ import annotations

from fastapi import FastAPI

from grim.web import Check, install_error_handlers, ops_router


def create_app(checks: dict[str, Check]) -> FastAPI:
    app = FastAPI(title="Grim meta-dispatcher", version="1")
    install_error_handlers(app)
    app.include_router(ops_router(checks))
    return app
