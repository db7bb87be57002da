"""One admin entry point: every area's routes behind GRIM_ADMIN_TOKEN."""

from __future__ import annotations

import httpx
import pytest

from grim.admin_app import create_app
from grim.settings import GrimSettings

TOKEN = "123456789:AAF" + "x" * 32


@pytest.fixture
async def admin(grim_settings: GrimSettings):  # type: ignore[no-untyped-def]
    app = create_app(grim_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            yield client


def auth(settings: GrimSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}


@pytest.mark.parametrize("path", ["/admin/pools", "/admin/bots", "/admin/products", "/admin/pixels"])
async def test_every_area_refuses_without_the_token(admin: httpx.AsyncClient, path: str) -> None:
    assert (await admin.get(path)).status_code == 401
    wrong = await admin.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"


async def test_configures_a_seller_through_one_api(
    admin: httpx.AsyncClient, grim_settings: GrimSettings
) -> None:
    headers = auth(grim_settings)
    bot = await admin.post("/admin/bots", json={"token": TOKEN, "username": "admin_test_bot"},
                           headers=headers)
    assert bot.status_code == 201, bot.text
    assert TOKEN not in bot.text
    pixel = await admin.put("/admin/pixels/1234567890", json={"access_token": "EAAB-secret"},
                            headers=headers)
    assert pixel.status_code == 200, pixel.text
    assert "EAAB-secret" not in pixel.text
    pool = await admin.post("/admin/pools", json={"slug": "admin-test", "name": "Admin test",
                                                  "pixel_id": "1234567890"}, headers=headers)
    assert pool.status_code == 201, pool.text
    listed = await admin.get("/admin/pools", headers=headers)
    assert "admin-test" in {p["slug"] for p in listed.json()}
    assert (await admin.get("/admin/products", headers=headers)).status_code == 200


async def test_openapi_lists_every_area(admin: httpx.AsyncClient) -> None:
    paths = (await admin.get("/openapi.json")).json()["paths"]
    for expected in ("/admin/pools", "/admin/bots", "/admin/products", "/admin/pixels",
                     "/readyz"):
        assert expected in paths
