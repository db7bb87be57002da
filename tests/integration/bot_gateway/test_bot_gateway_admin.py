"""Admin API (router mounted as the lead's admin app does) and the `grim bots` CLI."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI
from grim_bot_gateway.admin import router
from grim_bot_gateway.settings import BotGatewaySettings

from grim.web import install_error_handlers

GRIM = str(Path(sys.executable).with_name("grim"))


def _token() -> tuple[int, str]:
    bot_id = secrets.randbelow(9 * 10**9) + 10**9
    return bot_id, f"{bot_id}:AA{secrets.token_urlsafe(30)[:33]}"


async def test_admin_router_manages_bots_funnels_and_webhooks(
    gw_settings: BotGatewaySettings, pg_pool, fake_tg,
) -> None:
    fake, _ = fake_tg
    app = FastAPI()
    install_error_handlers(app)
    app.state.db = pg_pool
    app.state.settings = gw_settings
    app.include_router(router)
    bot_id, token = _token()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://admin") as admin:
        created = await admin.post("/bots", json={"token": token, "username": f"a{bot_id}_bot"})
        assert created.status_code == 201 and created.json()["id"] == bot_id
        assert token not in created.text
        assert (await admin.post("/bots", json={"token": "nope", "username": "abcd"})) \
            .status_code == 422
        listed = await admin.get("/bots")
        assert bot_id in [b["id"] for b in listed.json()] and token not in listed.text
        assert (await admin.get(f"/bots/{bot_id}/funnel")).status_code == 404
        funnel = {"welcome_text": "Oi {name}", "offers": [
            {"product_id": 7, "name": "Curso", "price_cents": 4990}]}
        assert (await admin.put(f"/bots/{bot_id}/funnel", json=funnel)).status_code == 200
        bad = await admin.put(f"/bots/{bot_id}/funnel", json={"offers": [{"product_id": 7}]})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
        got = (await admin.get(f"/bots/{bot_id}/funnel")).json()
        assert got["offers"][0]["price_cents"] == 4990
        assert (await admin.get(f"/bots/{bot_id}")).json()["has_funnel"] is True
        assert (await admin.put("/bots/1/funnel", json=funnel)).status_code == 404
        hook = await admin.post(f"/bots/{bot_id}/webhook", json={"max_connections": 20})
        assert hook.status_code == 200, hook.text
        assert hook.json()["url"] == f"https://grim.example/webhook/telegram/{bot_id}"
        assert "secret_token" not in hook.json()
        info = (await admin.get(f"/bots/{bot_id}/webhook")).json()
        assert info["url"] == hook.json()["url"] and info["max_connections"] == 20
        assert (await admin.patch(f"/bots/{bot_id}", json={"enabled": False})).json()[
            "enabled"] is False
    registered = fake.webhooks[bot_id]
    assert registered["secret_token"] and registered["allowed_updates"] == [
        "message", "callback_query", "my_chat_member"]


async def _grim(env: dict[str, str], *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        GRIM, *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode()


async def test_bots_cli_add_funnel_webhook_info(
    gw_settings: BotGatewaySettings, fake_tg, tmp_path: Path,
) -> None:
    fake, url = fake_tg
    env = {**os.environ, "GRIM_DATABASE_URL": gw_settings.database_url,
           "GRIM_SECRET_KEY": gw_settings.secret_key.get_secret_value(),
           "GRIM_TELEGRAM_API_BASE": url, "GRIM_BOT_GATEWAY_PUBLIC_URL": "https://grim.example",
           "COLUMNS": "200"}
    bot_id, token = _token()
    username = f"c{bot_id}_bot"
    code, out = await _grim({**env, "GRIM_BOT_TOKEN": token}, "bots", "add",
                            "--username", username)
    assert code == 0 and str(bot_id) in out and token not in out
    code, out = await _grim(env, "bots", "list")
    assert code == 0 and username in out and token not in out
    funnel = tmp_path / "funnel.json"
    funnel.write_bytes(orjson.dumps({"welcome_text": "Bem-vinda!", "offers": [
        {"product_id": 3, "name": "Ebook", "price_cents": 1990}]}))
    code, out = await _grim(env, "bots", "funnel-set", username, str(funnel))
    assert code == 0, out
    code, out = await _grim(env, "bots", "funnel-show", str(bot_id))
    assert code == 0 and orjson.loads(out)["offers"][0]["name"] == "Ebook"
    funnel.write_text('{"offers": [{"product_id": 0}]}')
    code, out = await _grim(env, "bots", "funnel-set", username, str(funnel))
    assert code == 1 and "invalid funnel" in out and "Traceback" not in out
    code, out = await _grim(env, "bots", "set-webhook", username)
    assert code == 0, out
    assert fake.webhooks[bot_id]["url"] == f"https://grim.example/webhook/telegram/{bot_id}"
    code, out = await _grim(env, "bots", "info", username)
    assert code == 0 and orjson.loads(out)["webhook"]["url"] == fake.webhooks[bot_id]["url"]
    code, out = await _grim(env, "bots", "info", "nobody_here_bot")
    assert code == 1 and "no bot" in out and "Traceback" not in out
