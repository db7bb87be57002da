"""The fake Telegram refuses what the real Bot API refuses."""

from __future__ import annotations

import httpx
import orjson
import pytest

from grim.sandbox.telegram import FakeTelegram

TOKEN = "123456789:AAH" + "x" * 32


@pytest.fixture
async def api():  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app),
                                 base_url="http://tg") as http:
        yield fake, http


async def call(
    http: httpx.AsyncClient, method: str, body: dict, token: str = TOKEN
) -> tuple[int, dict]:
    response = await http.post(f"/bot{token}/{method}", json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("method", "body", "description"),
    [
        ("sendMessage", {"chat_id": 5, "text": ""}, "text is empty"),
        ("sendMessage", {"chat_id": 5, "text": "x" * 4097}, "too long"),
        ("sendMessage", {"text": "oi"}, "chat_id is empty"),
        ("sendMessage", {"chat_id": 5, "text": "oi", "parse_mode": "html"}, "parse_mode"),
        ("sendMessage", {"chat_id": 5, "text": "<blink>oi</blink>", "parse_mode": "HTML"},
         "can't parse entities"),
        ("sendMessage", {"chat_id": 5, "text": "oi", "reply_markup": {"inline_keyboard": [[
            {"text": "b", "callback_data": "x" * 65}]]}}, "BUTTON_DATA_INVALID"),
        ("sendMessage", {"chat_id": 5, "text": "oi", "reply_markup": {"inline_keyboard": [[
            {"text": "b", "copy_text": {"text": "x" * 257}}]]}}, "COPY_TEXT_INVALID"),
        ("sendMessage", {"chat_id": 5, "text": "oi", "reply_markup": {"inline_keyboard": [[
            {"text": "b"}]]}}, "exactly one"),
        ("sendMessage", {"chat_id": 5, "text": "oi", "reply_markup": {"inline_keyboard": {}}},
         "Array of Arrays"),
        ("sendPhoto", {"chat_id": 5, "photo": "https://x/p.jpg", "caption": "c" * 1025},
         "caption is too long"),
        ("sendPhoto", {"chat_id": 5}, "no photo"),
        ("answerCallbackQuery", {}, "QUERY_ID_INVALID"),
        ("setWebhook", {"url": "http://example.com/hook"}, "HTTPS URL"),
        ("setWebhook", {"url": "https://example.com:8102/hook"}, "ports"),
        ("setWebhook", {"url": "https://example.com/hook", "secret_token": "a b"}, "secret"),
        ("setWebhook", {"url": "https://example.com/hook", "max_connections": 500},
         "max_connections"),
        ("setWebhook", {"url": "https://example.com/hook", "allowed_updates": ["nope"]},
         "allowed_updates"),
    ],
)
async def test_invalid_calls_get_400_with_telegrams_description(
    api, method: str, body: dict, description: str
) -> None:
    fake, http = api
    status, answer = await call(http, method, body)
    assert status == 400
    assert answer["ok"] is False and answer["error_code"] == 400
    assert description in answer["description"]
    assert fake.calls == []


async def test_text_length_counts_what_the_user_sees_in_html(api) -> None:
    _, http = api
    status, _ = await call(http, "sendMessage", {"chat_id": 5, "parse_mode": "HTML",
                                                 "text": "<b>" + "x" * 4096 + "</b>"})
    assert status == 200


async def test_bad_token_shape_and_unknown_method_are_404(api) -> None:
    _, http = api
    assert (await call(http, "sendMessage", {"chat_id": 5, "text": "x"}, token="abc"))[0] == 404
    assert (await call(http, "sendMessagez", {"chat_id": 5, "text": "x"}))[0] == 404


async def test_faults_on_demand(api) -> None:
    fake, http = api
    fake.fail(429, method="sendMessage", chat_id=5, retry_after=9)
    status, body = await call(http, "sendMessage", {"chat_id": 5, "text": "x"})
    assert status == 429 and body["parameters"] == {"retry_after": 9}
    assert (await call(http, "sendMessage", {"chat_id": 5, "text": "x"}))[0] == 200
    fake.blocked_chats.add(6)
    status, body = await call(http, "sendMessage", {"chat_id": 6, "text": "x"})
    assert status == 403 and body["description"] == "Forbidden: bot was blocked by the user"


async def test_webhook_roundtrip_and_control_api(api) -> None:
    fake, http = api
    hook = {"url": "https://grim.example/webhook/telegram/123456789", "secret_token": "s3cr-t_",
            "allowed_updates": ["message", "callback_query"], "max_connections": 40}
    assert (await call(http, "setWebhook", hook))[0] == 200
    _, info = await call(http, "getWebhookInfo", {})
    assert info["result"]["url"] == hook["url"]
    assert info["result"]["allowed_updates"] == hook["allowed_updates"]
    calls = (await http.get("/_sandbox/calls", params={"method": "setWebhook"})).json()
    assert calls[0]["params"]["secret_token"] == "s3cr-t_"
    await http.post("/_sandbox/faults", content=orjson.dumps({"status": 500}))
    assert (await call(http, "getMe", {}))[0] == 500
    await http.post("/_sandbox/reset")
    assert fake.calls == [] and fake.webhooks == {}


async def test_form_encoded_params_are_accepted_like_telegram(api) -> None:
    fake, http = api
    response = await http.post(f"/bot{TOKEN}/sendMessage", data={
        "chat_id": "-1001234567890", "text": "oi",
        "reply_markup": orjson.dumps({"inline_keyboard": [[{"text": "a", "url": "https://x"}]]})
        .decode()})
    assert response.status_code == 200
    assert response.json()["result"]["chat"]["id"] == -1001234567890
    assert fake.sent("sendMessage", chat_id=-1001234567890)
