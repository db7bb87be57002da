"""Retry classification, rate limits, and the client against the strict fake Telegram."""

from __future__ import annotations

import logging

import httpx
import pytest
from grim_bot_gateway.funnel import Outgoing
from grim_bot_gateway.ratelimit import RateLimiter
from grim_bot_gateway.retry import classify_response
from grim_bot_gateway.telegram_client import (
    BotBlocked,
    TelegramClient,
    TelegramError,
    TelegramUnavailable,
)

from grim.sandbox.telegram import FakeTelegram

TOKEN = "123456789:AAH" + "x" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.mark.parametrize(
    ("status", "body", "verdict", "delay"),
    [
        (200, {"ok": True, "result": {}}, "ok", 0),
        (429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 7}}, "retry", 7),
        (502, {"ok": False}, "retry", 0.5),
        (500, None, "retry", 0.5),
        (403, {"ok": False, "description": "Forbidden: bot was blocked by the user"},
         "blocked", 0),
        (403, {"ok": False, "description": "Forbidden: user is deactivated"}, "blocked", 0),
        (400, {"ok": False, "description": "Bad Request: chat not found"}, "failed", 0),
        (401, {"ok": False, "description": "Unauthorized"}, "failed", 0),
        (200, {"ok": False}, "failed", 0),
    ],
)
def test_classification(status: int, body: object, verdict: str, delay: float) -> None:
    decision = classify_response(status, body, attempt=1, backoff=0.5)
    assert decision.verdict == verdict
    assert decision.delay == delay


def test_backoff_doubles_on_5xx() -> None:
    delays = [classify_response(503, None, attempt=a, backoff=0.5).delay for a in (1, 2, 3)]
    assert delays == [0.5, 1.0, 2.0]


def test_rate_limiter_spaces_messages_per_chat_and_per_bot() -> None:
    now = [100.0]
    limiter = RateLimiter(per_chat_interval=1.0, per_bot_rate=10, clock=lambda: now[0])
    assert limiter.reserve(1, 5) == 0
    assert limiter.reserve(1, 5) == pytest.approx(1.0)   # same chat waits a second
    assert limiter.reserve(1, 6) == pytest.approx(0.1)   # other chat: only the bot spacing
    assert limiter.reserve(1, 8) == pytest.approx(0.2)
    assert limiter.reserve(1, 5) == pytest.approx(2.0)   # not held up by the others
    assert limiter.reserve(2, 5) == 0                    # another bot is independent
    limiter.push_back(1, 7, 30)
    assert limiter.reserve(1, 7) == pytest.approx(30)


def test_bot_rate_holds_over_a_burst() -> None:
    limiter = RateLimiter(per_chat_interval=1.0, per_bot_rate=30, clock=lambda: 0.0)
    delays = sorted(limiter.reserve(1, chat) for chat in range(90))
    assert delays[29] < 0.99 < delays[30]
    assert delays[-1] == pytest.approx(89 / 30)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def client(fake: FakeTelegram):  # type: ignore[no-untyped-def]
    sleeps = Sleeps()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
        yield TelegramClient("http://tg", http, RateLimiter(0, 0), max_attempts=4, backoff=0.5,
                             sleep=sleeps), sleeps


async def test_429_honours_retry_after_then_succeeds(fake: FakeTelegram, client) -> None:
    tg, sleeps = client
    fake.fail(429, method="sendMessage", retry_after=3)
    result = await tg.call(1, TOKEN, "sendMessage", {"chat_id": 5, "text": "oi"}, chat_id=5)
    assert result["text"] == "oi"
    assert sleeps.calls == [3]
    assert len(fake.sent("sendMessage")) == 1


async def test_5xx_backs_off_and_gives_up_as_unavailable(fake: FakeTelegram, client) -> None:
    tg, sleeps = client
    fake.fail(502, count=10)
    with pytest.raises(TelegramUnavailable):
        await tg.call(1, TOKEN, "sendMessage", {"chat_id": 5, "text": "oi"})
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert isinstance(TelegramUnavailable("x"), ConnectionError)


async def test_403_blocked_is_not_retried(fake: FakeTelegram, client) -> None:
    tg, sleeps = client
    fake.blocked_chats.add(5)
    with pytest.raises(BotBlocked):
        await tg.call(1, TOKEN, "sendMessage", {"chat_id": 5, "text": "oi"})
    assert sleeps.calls == []
    assert len(fake.refused) == 1


async def test_400_is_not_retried(fake: FakeTelegram, client) -> None:
    tg, sleeps = client
    with pytest.raises(TelegramError) as err:
        await tg.call(1, TOKEN, "sendMessage", {"chat_id": 5, "text": "x" * 4097})
    assert "too long" in err.value.reason
    assert sleeps.calls == [] and len(fake.refused) == 1


async def test_network_errors_are_retried_and_the_token_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    sleeps = Sleeps()
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        tg = TelegramClient("http://tg", http, RateLimiter(0, 0), max_attempts=3, sleep=sleeps)
        with pytest.raises(TelegramUnavailable) as err:
            await tg.call(1, TOKEN, "sendMessage", {"chat_id": 5, "text": "oi"})
    assert len(sleeps.calls) == 2
    assert TOKEN not in caplog.text and TOKEN not in str(err.value)
    assert TOKEN.split(":")[1] not in caplog.text


async def test_photo_upload_goes_as_multipart(fake: FakeTelegram, client) -> None:
    tg, _ = client
    markup = {"inline_keyboard": [[{"text": "Copiar", "copy_text": {"text": "000201"}}]]}
    await tg.send(1, TOKEN, Outgoing("sendPhoto", {"chat_id": 5, "reply_markup": markup},
                                     ("photo", "pix.png", PNG)))
    call = fake.sent("sendPhoto")[0]
    assert call.files["photo"] == PNG
    assert call.params["chat_id"] == "5"
