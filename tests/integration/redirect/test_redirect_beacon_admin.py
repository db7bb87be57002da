"""Cookie beacon, admin API (behind bearer auth) and CLI against the real stack."""

from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI
from typer.testing import CliRunner

from grim.cli.main import app as grim_cli
from grim.config.bots import upsert_bot
from grim.crypto import SecretBox
from grim.web import bearer_auth, install_error_handlers
from grim_redirect.admin import router

from .conftest import running
from .redirect_support import await_clicks

TOKEN = "ab12" * 8


async def test_cookie_beacon_publishes_the_reported_cookies(redirect_settings):
    fbp, fbc = "fb.1.1763800000000.555.AQYBAAEA", "fb.1.1763800000000.IwAR-x"
    async with running(redirect_settings) as (_, client):
        # sendBeacon with a string body arrives as text/plain.
        body = json.dumps({"tracking_token": TOKEN, "fbp": fbp, "fbc": fbc})
        ok = await client.post("/api/tracking/cookies", content=body,
                               headers={"content-type": "text/plain;charset=UTF-8",
                                        "user-agent": "UA-1", "x-forwarded-for": "192.0.2.4"})
        empty = await client.post("/api/tracking/cookies", json={"tracking_token": TOKEN})
        bad_token = await client.post("/api/tracking/cookies",
                                      json={"tracking_token": "XYZ", "fbp": fbp})
        bad_json = await client.post("/api/tracking/cookies", content=b"{nope")
        too_big = await client.post("/api/tracking/cookies", content=b"{" + b" " * 5000 + b"}")
        bad_cookie = await client.post("/api/tracking/cookies",
                                       json={"tracking_token": TOKEN, "fbp": "<script>"})
        extra = await client.post("/api/tracking/cookies",
                                  json={"tracking_token": TOKEN, "fbp": fbp, "evil": 1})
        not_object = await client.post("/api/tracking/cookies", content=b"[1]")
    assert ok.status_code == 204 and empty.status_code == 204
    assert bad_token.status_code == 422 and bad_token.json()["error"] == "invalid_request"
    assert bad_json.status_code == 400 and too_big.status_code == 413
    assert bad_cookie.status_code == 422 and "fb.<n>" in json.dumps(bad_cookie.json())
    assert extra.status_code == 422 and not_object.status_code == 422
    events = await await_clicks(redirect_settings.kafka_bootstrap,
                              redirect_settings.topic("click-cookies"), 1, tracking_token=TOKEN)
    assert len(events) == 1
    assert (events[0]["fbp"], events[0]["fbc"]) == (fbp, fbc)
    assert (events[0]["client_ip"], events[0]["user_agent"]) == ("192.0.2.4", "UA-1")


@pytest.fixture
async def admin(pg_pool, grim_settings):
    app = FastAPI()
    install_error_handlers(app)
    app.state.db = pg_pool
    app.state.settings = grim_settings
    guard = bearer_auth(lambda: grim_settings.admin_token.get_secret_value(), "admin")
    app.include_router(router, prefix="/admin", dependencies=[Depends(guard)])
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": "Bearer " + grim_settings.admin_token.get_secret_value()}
    async with httpx.AsyncClient(transport=transport, base_url="http://admin",
                                 headers=headers) as client:
        yield client


async def test_admin_manages_pools_bots_and_pixels(admin, seed, pg_pool):
    bot = await seed.bot()
    anon = await admin.get("/admin/pools", headers={"authorization": ""})
    assert anon.status_code == 401

    pixel = await admin.put("/admin/pixels/998877665544",
                            json={"name": "Loja", "access_token": "EAAB-secret-token-123",
                                  "enabled_events": ["PageView", "Purchase"],
                                  "test_event_code": "TEST123"})
    assert pixel.status_code == 200
    assert pixel.json()["has_access_token"] is True and "access_token" not in pixel.json()
    stored = await pg_pool.fetchval(
        "SELECT access_token_enc FROM config.pixels WHERE pixel_id = '998877665544'")
    assert b"EAAB-secret-token-123" not in bytes(stored)
    assert (await admin.put("/admin/pixels/998877665544",
                            json={"enabled_events": ["Bogus"]})).status_code == 422

    created = await admin.post("/admin/pools", json={"slug": "promo-bf", "name": "BF",
                                                     "pixel_id": "998877665544"})
    assert created.status_code == 201 and created.json()["bots"] == []
    assert (await admin.post("/admin/pools", json={"slug": "promo-bf"})).status_code == 409
    assert (await admin.post("/admin/pools", json={"slug": "Bad Slug!"})).status_code == 422
    assert (await admin.post("/admin/pools",
                             json={"slug": "other", "pixel_id": "1"})).status_code == 422

    added = await admin.put(f"/admin/pools/promo-bf/bots/{bot.id}", json={"weight": 7})
    assert added.status_code == 200
    assert added.json()["bots"] == [{"bot_id": bot.id, "username": bot.username, "weight": 7,
                                     "enabled": True, "usable": True}]
    paused = await admin.put(f"/admin/pools/promo-bf/bots/{bot.id}", json={"enabled": False})
    assert paused.json()["bots"][0] | {} == {**added.json()["bots"][0], "enabled": False,
                                              "usable": False}
    assert (await admin.put("/admin/pools/promo-bf/bots/12345", json={})).status_code == 422
    assert (await admin.put(f"/admin/pools/nope/bots/{bot.id}", json={})).status_code == 404
    assert (await admin.put(f"/admin/pools/promo-bf/bots/{bot.id}",
                            json={"weight": 0})).status_code == 422

    patched = await admin.patch("/admin/pools/promo-bf", json={"enabled": False, "pixel_id": None})
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["pixel_id"]) == (False, None)
    kept = await admin.patch("/admin/pools/promo-bf", json={"name": "renamed"})
    assert kept.json()["enabled"] is False and kept.json()["name"] == "renamed"
    assert (await admin.patch("/admin/pools/nope", json={})).status_code == 404

    listed = await admin.get("/admin/pools")
    assert "promo-bf" in [p["slug"] for p in listed.json()]
    assert (await admin.delete(f"/admin/pools/promo-bf/bots/{bot.id}")).status_code == 204
    assert (await admin.delete(f"/admin/pools/promo-bf/bots/{bot.id}")).status_code == 404
    assert [p["pixel_id"] for p in (await admin.get("/admin/pixels")).json()].count(
        "998877665544") == 1


async def _register_bot(settings):
    conn = await asyncpg.connect(settings.database_url)
    try:
        box = SecretBox(settings.secret_key.get_secret_value())
        return await upsert_bot(conn, box, token=f"{777000000 + os.getpid() % 1000}:AA{'c' * 32}",
                                username=f"cli_{os.getpid()}_bot")
    finally:
        await conn.close()


def test_cli_pools_and_pixels(grim_settings):
    env = {"GRIM_DATABASE_URL": grim_settings.database_url,
           "GRIM_SECRET_KEY": grim_settings.secret_key.get_secret_value()}
    runner = CliRunner()

    def grim(*args: str):
        return runner.invoke(grim_cli, list(args), env=env)

    result = grim("pixels", "set", "11223344", "--name", "cli", "--events", "PageView")
    assert result.exit_code == 0, result.output
    assert "11223344" in grim("pixels", "list").output
    assert grim("pools", "create", "cli-pool", "--pixel", "11223344").exit_code == 0
    duplicate = grim("pools", "create", "cli-pool")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert grim("pools", "add-bot", "cli-pool", "@nobody_bot").exit_code == 1
    bot = asyncio.run(_register_bot(grim_settings))
    added = grim("pools", "add-bot", "cli-pool", f"@{bot.username}", "--weight", "4")
    assert added.exit_code == 0, added.output
    assert f"@{bot.username} (4, ok)" in added.output
    assert grim("pools", "remove-bot", "cli-pool", str(bot.id)).exit_code == 0
    assert grim("pools", "remove-bot", "cli-pool", str(bot.id)).exit_code == 1
    assert grim("pools", "update", "cli-pool", "--disabled", "--no-pixel").exit_code == 0
    listed = grim("pools", "list").output
    assert "cli-pool" in listed and "no" in listed
    bad = grim("pixels", "set", "abc")
    assert bad.exit_code == 1 and "digits" in bad.output
