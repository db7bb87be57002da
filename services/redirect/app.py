"""HTTP entrypoints of the redirect: decode the request, call the use case, encode the answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import URL
from starlette.types import Scope

from grim.checks import postgres_check, redis_check
from grim.fastroute import install_fast_route
from grim.logs import configure_logging
from grim.web import error_response, install_error_handlers, install_http_metrics, ops_router

from . import bootstrap
from .capture import client_ip
from .clicks import FBC_COOKIE_AGE, ClickRequest
from .cookies import MAX_BODY, CookieReport, report_event
from .metrics import CLICK_LATENCY, COOKIE_REPORTS, REQUESTS
from .settings import RedirectSettings

_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def create_app(settings: RedirectSettings | None = None) -> FastAPI:
    settings = settings or RedirectSettings()

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

    app = FastAPI(title="Grim redirect", lifespan=lifespan)
    install_error_handlers(app)
    # /go is nearly all the traffic: served ahead of FastAPI's routing and middleware.
    install_fast_route(
        app, "redirect", "/go/{slug}", ("GET", "HEAD"),
        lambda scope, _receive, slug: serve_click(app.state.runtime, settings, scope, slug),
    )
    install_http_metrics(app, "redirect")

    def checks():  # type: ignore[no-untyped-def]
        # Kafka is not a readiness condition: without it clicks go to the outbox and
        # visitors are still served (grim_redirect_kafka_connected shows it).
        rt = app.state.runtime
        return {"postgres": postgres_check(rt.db), "redis": redis_check(rt.redis)}

    app.include_router(ops_router(checks))

    async def go(slug: str, request: Request) -> Response:
        # Served by the fast route above; these routes document it and serve any caller
        # that reaches the router (same function, same answer).
        return await serve_click(request.app.state.runtime, settings, request.scope, slug)

    for method in ("GET", "HEAD"):
        app.add_api_route(
            "/go/{slug}", go, methods=[method], response_class=HTMLResponse,
            operation_id=f"go_{method.lower()}",
            summary="Ad link: record the click and send the visitor to a bot",
            responses={302: {"description": "Pool without a pixel: straight to the bot"},
                       404: {"description": "Unknown link (HTML page)"},
                       503: {"description": "Paused pool or no usable bot (HTML page)"}},
        )

    @app.post("/api/tracking/cookies", status_code=204,
              summary="Cookie beacon of the bridge page (JSON body, any content type)",
              responses={400: {}, 413: {}, 422: {}})
    async def cookies(request: Request) -> Response:
        rt = request.app.state.runtime
        body = await request.body()
        if len(body) > MAX_BODY:
            COOKIE_REPORTS.labels("too_large").inc()
            return error_response(413, "payload_too_large", f"body over {MAX_BODY} bytes")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            COOKIE_REPORTS.labels("bad_json").inc()
            return error_response(400, "bad_request", "body must be a JSON object")
        try:
            report = CookieReport.model_validate(data)
        except ValidationError as exc:
            COOKIE_REPORTS.labels("invalid").inc()
            problems = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
            return error_response(422, "invalid_request", problems)
        peer = request.client.host if request.client else None
        event = report_event(
            report,
            client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_networks),
            request.headers.get("user-agent"),
        )
        if event is None:
            COOKIE_REPORTS.labels("empty").inc()
            return Response(status_code=204)
        try:
            path = await rt.sink.record(event)
        except OSError as exc:
            # Nothing durable accepted it: say so, the page's beacon is best-effort anyway.
            COOKIE_REPORTS.labels("lost").inc()
            return error_response(503, "unavailable", f"cannot record the report now: {exc}")
        COOKIE_REPORTS.labels(path).inc()
        return Response(status_code=204)

    return app


async def serve_click(rt: bootstrap.Runtime, settings: RedirectSettings, scope: Scope,
                      slug: str) -> Response:
    """The /go answer for an ASGI request scope: capture, record, page or redirect."""
    started = time.perf_counter()
    headers = _first_values(scope, _CLICK_HEADERS)
    url = URL(scope=scope)
    peer = scope["client"][0] if scope.get("client") else None
    click = ClickRequest(
        slug=slug,
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        landing_url=str(url),
        cookie_header=headers[b"cookie"],
        user_agent=headers[b"user-agent"],
        referer=headers[b"referer"],
        client_ip=client_ip(peer, headers[b"x-forwarded-for"], settings.trusted_networks),
    )
    result = await rt.clicks.handle(click)
    response: Response
    if result.location is not None:
        response = RedirectResponse(result.location, status_code=302, headers=_NO_STORE)
    else:
        response = HTMLResponse(result.html or "", status_code=result.status, headers=_NO_STORE)
    for name, value in result.cookies.items():
        # What Response.set_cookie writes, without its SimpleCookie round trip: the
        # use case only sets values that need no quoting (capture.cookie_safe).
        secure = "; Secure" if url.scheme == "https" else ""
        response.raw_headers.append((b"set-cookie", (
            f"{name}={value}; Max-Age={FBC_COOKIE_AGE}; Path=/; SameSite=lax{secure}"
        ).encode("latin-1")))
    REQUESTS.labels(result.outcome).inc()
    CLICK_LATENCY.observe(time.perf_counter() - started)
    return response


_CLICK_HEADERS = (b"cookie", b"user-agent", b"referer", b"x-forwarded-for")


def _first_values(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, str | None]:
    """Each named header's first value (as Request.headers.get gives it), in one pass."""
    found: dict[bytes, str | None] = dict.fromkeys(names)
    for name, value in scope["headers"]:  # ASGI header names are lower-case
        if name in found and found[name] is None:
            found[name] = value.decode("latin-1")
    return found


def app_factory() -> FastAPI:
    """For `uvicorn --factory grim_redirect.app:app_factory`."""
    configure_logging("redirect")
    return create_app()


__all__ = ["create_app", "app_factory"]
