"""grim.fastroute: the hot route is answered directly, everything else by the application."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.responses import PlainTextResponse

from grim.fastroute import install_fast_route
from grim.web import install_error_handlers, install_http_metrics


def make_app(seen: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    async def fast(scope, _receive, param: str) -> PlainTextResponse:
        seen.append(param)
        return PlainTextResponse(f"fast {param}")

    install_fast_route(app, "fastroute_test", "/items/{item_id}", ("GET",), fast,
                       accept=str.isdigit)
    install_http_metrics(app, "fastroute_test")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> PlainTextResponse:
        return PlainTextResponse(f"routed {item_id}")

    @app.get("/items/{item_id}/parts")
    async def parts(item_id: int) -> PlainTextResponse:
        return PlainTextResponse(f"parts {item_id}")

    return app


async def get(app: FastAPI, method: str, path: str, **kw) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, **kw)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


async def test_accepted_requests_take_the_fast_path_and_are_counted_by_template():
    seen: list[str] = []
    app = make_app(seen)
    response = await get(app, "GET", "/items/42")
    assert response.text == "fast 42" and seen == ["42"]
    assert REGISTRY.get_sample_value(
        "grim_fastroute_test_http_requests_total",
        {"route": "/items/{item_id}", "method": "GET", "status": "200"}) == 1


async def test_everything_else_goes_through_the_application():
    seen: list[str] = []
    app = make_app(seen)
    invalid = await get(app, "GET", "/items/abc")
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"
    assert (await get(app, "GET", "/items/7/parts")).text == "parts 7"
    assert (await get(app, "POST", "/items/7")).status_code == 405
    assert (await get(app, "GET", "/items/")).status_code == 404
    assert seen == []


async def test_root_path_is_stripped_before_matching():
    seen: list[str] = []
    app = make_app(seen)
    response = await get(app, "GET", "/api/items/9", root_path="/api")
    assert response.text == "fast 9" and seen == ["9"]
