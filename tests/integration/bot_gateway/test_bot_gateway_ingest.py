"""Webhook ingestion against the real Kafka, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest
from grim_bot_gateway.app import create_app
from grim_bot_gateway.settings import BotGatewaySettings
from grim_schemas import decode
from grim_schemas.events import BotStarted, TelegramUpdateReceived

from grim.kafka import EventPublisher
from tests.integration.bot_gateway.conftest import read_until
from tests.support import wait_for
from tests.unit.bot_gateway import tg_factory as tg


def _updates_of(records: list, bot_id: int) -> list[TelegramUpdateReceived]:
    events = [decode(r.value, TelegramUpdateReceived) for r in records]
    return [e for e in events if e.bot_id == bot_id]


def _starts_of(records: list, bot_id: int) -> list[BotStarted]:
    events = [decode(r.value, BotStarted) for r in records]
    return [e for e in events if e.bot_id == bot_id]


async def test_duplicate_update_id_gives_one_bot_started(
    gateway: httpx.AsyncClient, make_bot, gw_settings: BotGatewaySettings, pg_pool,
    publisher: EventPublisher, fake_tg,
) -> None:
    bot = await make_bot()
    token = uuid.uuid4().hex
    update_id, user = bot.next_update_id(), 8_100_000_000_123
    update = tg.start(update_id, user, token)
    first = await bot.post(gateway, update)
    second = await bot.post(gateway, update)
    assert first.status_code == 200 and second.status_code == 200
    # Two concurrent deliveries can both pass the Redis check: the consumer dedups too.
    await publisher.publish(TelegramUpdateReceived(producer="tests", bot_id=bot.id,
                                                   update_id=update_id, update=update))
    sentinel_id = bot.next_update_id()
    assert (await bot.post(gateway, tg.start(sentinel_id, 5555, None))).status_code == 200

    records = await read_until(
        gw_settings.kafka_bootstrap, gw_settings.topic("start"),
        lambda rs: any(e.update_id == sentinel_id for e in _starts_of(rs, bot.id)))
    starts = [e for e in _starts_of(records, bot.id) if e.update_id == update_id]
    assert len(starts) == 1
    assert starts[0].tracking_token == token and starts[0].payload == token
    assert starts[0].telegram_user_id == user and starts[0].chat_id == user
    assert starts[0].producer == "bot-gateway"

    updates = await read_until(
        gw_settings.kafka_bootstrap, gw_settings.topic("telegram-updates"),
        lambda rs: any(e.update_id == sentinel_id for e in _updates_of(rs, bot.id)))
    from_webhook = [e for e in _updates_of(updates, bot.id)
                    if e.update_id == update_id and e.producer == "bot-gateway"]
    assert len(from_webhook) == 1 and from_webhook[0].update == update

    row = await pg_pool.fetchrow("SELECT tracking_token, chat_id FROM bot_gateway.users"
                                 " WHERE bot_id = $1 AND telegram_user_id = $2", bot.id, user)
    assert row["tracking_token"] == token
    fake, _ = fake_tg
    await wait_for(lambda: fake.sent("sendMessage", chat_id=5555), message="sentinel reply")
    assert len(fake.sent("sendMessage", chat_id=user)) == 1


async def test_forged_or_missing_secret_is_401_and_nothing_published(
    gateway: httpx.AsyncClient, make_bot, gw_settings: BotGatewaySettings, redis_client,
) -> None:
    bot = await make_bot()
    forged_id, missing_id = bot.next_update_id(), bot.next_update_id()
    forged = await bot.post(gateway, tg.start(forged_id, 77, None), secret="not-the-secret")
    missing = await bot.post(gateway, tg.start(missing_id, 77, None), secret=None)
    assert forged.status_code == 401 and missing.status_code == 401
    assert forged.json()["error"] == "forbidden"
    sentinel = bot.next_update_id()
    assert (await bot.post(gateway, tg.start(sentinel, 78, None))).status_code == 200
    records = await read_until(
        gw_settings.kafka_bootstrap, gw_settings.topic("telegram-updates"),
        lambda rs: any(e.update_id == sentinel for e in _updates_of(rs, bot.id)))
    assert {e.update_id for e in _updates_of(records, bot.id)} == {sentinel}
    key = gw_settings.redis_key("bot-gateway", "update", bot.id, forged_id)
    assert not await redis_client.exists(key)


async def test_bad_requests_get_4xx_with_a_reason(gateway: httpx.AsyncClient, make_bot) -> None:
    bot = await make_bot()
    headers = {"X-Telegram-Bot-Api-Secret-Token": bot.secret}
    cases = [
        (f"/webhook/telegram/{bot.id}", b"{nope", 400, "malformed"),
        (f"/webhook/telegram/{bot.id}", b'{"message": {}}', 400, "malformed"),
        ("/webhook/telegram/1", b'{"update_id": 1}', 404, "unknown_bot"),
        ("/webhook/telegram/99999999999999999999999", b'{"update_id": 1}', 404, "unknown_bot"),
        ("/webhook/telegram/abc", b'{"update_id": 1}', 422, "invalid_request"),
    ]
    for path, body, status, error in cases:
        response = await gateway.post(path, content=body, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"] == error and response.json()["detail"]
    huge = b'{"update_id": 1, "x": "' + b"a" * (1 << 20) + b'"}'
    assert (await gateway.post(f"/webhook/telegram/{bot.id}", content=huge,
                               headers=headers)).status_code == 413


async def test_kafka_outage_answers_503_and_the_retry_is_accepted_after_recovery(
    gateway: httpx.AsyncClient, make_bot, gw_settings: BotGatewaySettings, pg_pool,
) -> None:
    bot = await make_bot()
    dead = gw_settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1",
                                          "bot_gateway_run_consumers": False,
                                          "publish_timeout_seconds": 2})
    update_id = bot.next_update_id()
    token = uuid.uuid4().hex
    update = tg.start(update_id, 4242, token)
    app = create_app(dead)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as down:
        for _ in range(2):
            response = await bot.post(down, update)
            assert response.status_code == 503
            assert response.json()["error"] == "kafka_unavailable"
        ready = await down.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["kafka"] != "ok"
    # Telegram retries the same update against a gateway whose Kafka is back.
    retried = await bot.post(gateway, update)
    assert retried.status_code == 200
    assert (await bot.post(gateway, update)).status_code == 200  # later duplicate
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT tracking_token FROM bot_gateway.users WHERE bot_id = $1", bot.id),
        message="binding after recovery")
    records = await read_until(
        gw_settings.kafka_bootstrap, gw_settings.topic("start"),
        lambda rs: bool(_starts_of(rs, bot.id)))
    assert [e.tracking_token for e in _starts_of(records, bot.id)] == [token]


async def test_1000_updates_across_50_chats_keep_per_chat_order(
    gateway: httpx.AsyncClient, make_bot, gw_settings: BotGatewaySettings, pg_pool, fake_tg,
) -> None:
    bot = await make_bot()
    chats = [9_000_000_000 + i for i in range(50)]
    per_chat = 20
    plan = {chat: [] for chat in chats}
    for seq in range(per_chat):
        for chat in chats:
            plan[chat].append((bot.next_update_id(), f"p{seq}"))

    async def send(chat: int) -> None:
        # Telegram delivers one chat's updates in order; chats arrive interleaved.
        for update_id, payload in plan[chat]:
            response = await bot.post(gateway, tg.start(update_id, chat, payload))
            assert response.status_code == 200

    await asyncio.gather(*(send(c) for c in chats))
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT count(*) = $2 FROM bot_gateway.user_tokens WHERE bot_id = $1",
        bot.id, len(chats) * per_chat), timeout=90, message="1000 bindings")
    rows = await pg_pool.fetch(
        "SELECT telegram_user_id, payload FROM bot_gateway.user_tokens WHERE bot_id = $1"
        " ORDER BY id", bot.id)
    expected = [f"p{i}" for i in range(per_chat)]
    for chat in chats:
        assert [r["payload"] for r in rows if r["telegram_user_id"] == chat] == expected
    records = await read_until(
        gw_settings.kafka_bootstrap, gw_settings.topic("start"),
        lambda rs: len(_starts_of(rs, bot.id)) >= len(chats) * per_chat, timeout=60)
    for chat in chats:
        assert [e.payload for e in _starts_of(records, bot.id)
                if e.telegram_user_id == chat] == expected
    fake, _ = fake_tg
    await wait_for(lambda: all(len(fake.sent("sendMessage", chat_id=c)) == per_chat
                               for c in chats), timeout=60, message="every welcome sent")
    first = orjson.dumps(fake.sent("sendMessage", chat_id=chats[0])[0].params)
    assert b"Ana" in first


async def test_seen_marks_share_pipelines_and_answer_each_caller(redis_client) -> None:
    from grim_bot_gateway.redis_dedup import SeenUpdates

    seen = SeenUpdates(redis_client, ttl_seconds=60)
    keys = [f"test-seen:{uuid.uuid4().hex}" for _ in range(200)]
    await asyncio.gather(*(seen.mark(k) for k in keys[::2]))
    answers = await asyncio.gather(*(seen.seen(k) for k in keys))
    assert answers == [i % 2 == 0 for i in range(200)]
    assert 0 < await redis_client.ttl(keys[0]) <= 60


async def test_seen_marks_survive_a_script_flush(redis_client) -> None:
    from grim_bot_gateway.redis_dedup import SeenUpdates

    seen = SeenUpdates(redis_client, ttl_seconds=60)
    first, second = (f"test-seen:{uuid.uuid4().hex}" for _ in range(2))
    await seen.mark(first)
    await redis_client.script_flush()  # what a Redis restart does to loaded scripts
    await seen.mark(second)
    assert await asyncio.gather(seen.seen(first), seen.seen(second)) == [True, True]


async def test_background_marks_report_failures_and_are_visible_to_later_queries(
    redis_client,
) -> None:
    from grim_bot_gateway.redis_dedup import SeenUpdates
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    live = SeenUpdates(redis_client, ttl_seconds=60)
    key = f"test-seen:{uuid.uuid4().hex}"
    live.mark_soon(key, on_error=lambda exc: pytest.fail(f"mark failed: {exc}"))
    assert await live.seen(key) is True  # queued after the mark, so it sees it

    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    failures: list[BaseException] = []
    dead = SeenUpdates(dead_redis, ttl_seconds=60)
    try:
        dead.mark_soon("test-seen:lost", on_error=failures.append)
        with pytest.raises((RedisError, OSError)):
            await dead.seen("test-seen:lost")
        await wait_for(lambda: failures, message="the failed mark is reported")
    finally:
        await dead_redis.aclose()
    assert isinstance(failures[0], (RedisError, OSError))
