"""What every Grim HTTP service shares: health, readiness, metrics, error shapes."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from functools import cache

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]



def error_response(status: int, error: str, detail: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "detail": detail})


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "Short code: invalid_request, not_found, ..."},
        "detail": {"description": "The reason: a message, or a list of {loc, msg} problems"},
    },
}


def _document_error_shape(app: FastAPI) -> None:
    """Make the OpenAPI 422 (and every error) schema match what the handlers send."""
    build = app.openapi

    def openapi() -> dict:  # type: ignore[type-arg]
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _document_error_shape(app)
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(asyncpg.DataError)
    async def _data(_: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Input the database cannot hold (an id past 64 bits, a malformed value) is the
        # caller's error, not the server's: explain it instead of answering 500.
        return error_response(422, "invalid_request", f"value out of range or malformed: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": _error_code(exc.status_code), "detail": exc.detail},
            headers=getattr(exc, "headers", None),
        )


def _error_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "invalid_request",
        429: "too_many_requests",
        503: "unavailable",
    }.get(status, "error")


@cache
def http_metrics(service: str) -> tuple[Counter, Histogram]:
    requests = Counter(
        f"grim_{service}_http_requests_total",
        "HTTP requests by route, method and status",
        ["route", "method", "status"],
    )
    latency = Histogram(
        f"grim_{service}_http_request_duration_seconds",
        "HTTP request latency by route",
        ["route", "method"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    return requests, latency


class HttpMetricsMiddleware:
    """Counts and times requests by route template (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.requests, self.latency = http_metrics(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The route template, never the raw path: slugs and tokens would explode labels.
            name = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "")
            self.requests.labels(name, method, str(status)).inc()
            self.latency.labels(name, method).observe(time.perf_counter() - started)


def install_http_metrics(app: FastAPI, service: str) -> None:
    app.add_middleware(HttpMetricsMiddleware, service=service)


def metrics_payload() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def ops_router(checks: dict[str, Check] | Callable[[], dict[str, Check]]) -> APIRouter:
    """`/healthz`, `/readyz` and `/metrics`.

    `checks` maps a dependency name (kafka, postgres, redis) to a coroutine that
    raises when the dependency is unusable.
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Kafka, PostgreSQL and Redis connections are usable",
        responses={503: {"description": "A dependency is not usable"}},
    )
    async def readyz() -> JSONResponse:
        named = checks() if callable(checks) else checks
        results: dict[str, str] = {}

        async def run(name: str, check: Check) -> None:
            try:
                await asyncio.wait_for(check(), timeout=2.0)
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported
                results[name] = f"{type(exc).__name__}: {exc}"[:300]

        await asyncio.gather(*(run(n, c) for n, c in named.items()))
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not_ready", "checks": results},
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(metrics_payload(), media_type=CONTENT_TYPE_LATEST)

    return router


def bearer_auth(token_of: Callable[[], str], realm: str):  # type: ignore[no-untyped-def]
    """A dependency that requires `Authorization: Bearer <token>` (constant-time compare)."""
    import hmac

    from fastapi import Header, HTTPException

    async def require(authorization: str | None = Header(default=None)) -> None:
        expected = token_of()
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given or not hmac.compare_digest(
            given.encode(), expected.encode()
        ):
            raise HTTPException(
                status_code=401,
                detail=f"{realm}: missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require
