"""The funnel, PIX generation and deliveries, end to end inside the gateway."""

from __future__ import annotations

import uuid

import httpx
from grim_bot_gateway.funnel import FunnelConfig
from grim_bot_gateway.store import set_funnel
from grim_schemas.base import utcnow
from grim_schemas.events import PaymentConfirmed

from grim.kafka import EventPublisher
from tests.integration.bot_gateway.conftest import PNG
from tests.support import wait_for
from tests.unit.bot_gateway import tg_factory as tg

FUNNEL = FunnelConfig(
    welcome_text="Olá {name}! " + "Conteúdo exclusivo. " * 80,
    welcome_media="https://cdn.example/capa.jpg", welcome_media_type="photo",
    offers=[{"product_id": 7, "name": "Curso de Bolo", "price_cents": 4990},
            {"product_id": 9, "name": "Esgotado", "price_cents": 1000}],
    after_payment_messages=["Qualquer dúvida, responda aqui."],
)


async def _bot_with_funnel(make_bot, pg_pool):  # type: ignore[no-untyped-def]
    bot = await make_bot()
    await set_funnel(pg_pool, bot.id, FUNNEL)
    return bot


async def test_start_then_generate_pix_passes_the_token_and_sends_qr_and_code(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, fake_payments,
) -> None:
    fake, _ = fake_tg
    payments, _ = fake_payments
    bot = await _bot_with_funnel(make_bot, pg_pool)
    user, token = 8_200_000_000_001, uuid.uuid4().hex
    assert (await bot.post(gateway, tg.start(bot.next_update_id(), user, token))).status_code \
        == 200
    await wait_for(lambda: len(fake.sent(chat_id=user)) >= 3, message="welcome and offer")
    welcome = fake.sent(chat_id=user)
    assert welcome[0].method == "sendPhoto" and "Olá Ana!" in welcome[0].params["caption"]
    offer = welcome[-1].params
    assert "R$ 49,90" in offer["text"]
    assert offer["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "pix:7"

    tap = tg.callback(bot.next_update_id(), user, "pix:7", offer_message_id=501)
    assert (await bot.post(gateway, tap)).status_code == 200
    await wait_for(lambda: fake.sent("sendPhoto", chat_id=user)[1:], message="QR photo")
    await wait_for(lambda: any("copy_text" in str(c.params) for c in fake.sent(chat_id=user)),
                   message="copy-paste code")
    request = payments.requests[-1]
    assert request["tracking_token"] == token
    assert request["product_id"] == 7 and request["bot_id"] == bot.id
    assert request["telegram_user_id"] == user and request["chat_id"] == user
    answers = [c for c in fake.sent("answerCallbackQuery")
               if c.params["callback_query_id"] == tap["callback_query"]["id"]]
    assert len(answers) == 1
    assert fake.sent("sendPhoto", chat_id=user)[-1].files["photo"] == PNG
    code_message = [c for c in fake.sent("sendMessage", chat_id=user)
                    if "copy_text" in str(c.params)][-1]
    button = code_message.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["copy_text"]["text"] == code_message.params["text"]

    # A second tap on the same offer asks payments for the same charge (same key).
    second = tg.callback(bot.next_update_id(), user, "pix:7", offer_message_id=501)
    assert (await bot.post(gateway, second)).status_code == 200
    await wait_for(lambda: len(payments.requests) >= 2 and payments.requests[-1]
                   ["idempotency_key"] == request["idempotency_key"], message="second tap")
    mine = {r["idempotency_key"] for r in payments.requests if r["bot_id"] == bot.id}
    assert len(mine) == 1
    await wait_for(lambda: len([c for c in fake.sent("answerCallbackQuery")
                                if c.params["callback_query_id"]
                                == second["callback_query"]["id"]]) == 1,
                   message="second tap answered")


async def test_unknown_product_and_gateway_failure_are_told_to_the_user(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, fake_payments,
) -> None:
    fake, _ = fake_tg
    payments, _ = fake_payments
    bot = await _bot_with_funnel(make_bot, pg_pool)
    user = 8_200_000_000_002
    await bot.post(gateway, tg.callback(bot.next_update_id(), user, "pix:9"))
    await wait_for(lambda: any("não está disponível" in c.params.get("text", "")
                               for c in fake.sent("sendMessage", chat_id=user)),
                   message="unavailable notice")
    payments.fail_next = 5
    await bot.post(gateway, tg.callback(bot.next_update_id(), user, "pix:7"))
    await wait_for(lambda: any("Tente de novo" in c.params.get("text", "")
                               for c in fake.sent("sendMessage", chat_id=user)),
                   message="retry-later notice")
    payments.fail_next = 0
    assert len(fake.sent("answerCallbackQuery")) >= 2


async def test_paid_delivered_twice_sends_one_delivery_message(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, publisher: EventPublisher,
) -> None:
    fake, _ = fake_tg
    bot = await _bot_with_funnel(make_bot, pg_pool)
    user, other = 8_300_000_000_001, 8_300_000_000_002

    def paid(user_id: int, payment_id: str) -> PaymentConfirmed:
        return PaymentConfirmed(
            producer="tests", bot_id=bot.id, telegram_user_id=user_id, payment_id=payment_id,
            gateway="sandbox", gateway_event_id=uuid.uuid4().hex, amount_cents=4990,
            paid_at=utcnow(), delivery_url=f"https://grim.example/d/{payment_id}",
        )

    event = paid(user, "pay_once")
    await publisher.publish(event)
    await publisher.publish(event)                       # redelivered as is
    await publisher.publish(paid(user, "pay_once"))      # same payment, new gateway event
    await publisher.publish(paid(other, "pay_sentinel"))
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT sent_at IS NOT NULL FROM bot_gateway.deliveries WHERE payment_id = $1",
        "pay_sentinel"), message="sentinel delivered")
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT sent_at IS NOT NULL FROM bot_gateway.deliveries WHERE payment_id = $1",
        "pay_once"), message="delivered")
    links = [c for c in fake.sent("sendMessage", chat_id=user)
             if "https://grim.example/d/pay_once" in c.params["text"]]
    assert len(links) == 1
    assert links[0].params["reply_markup"]["inline_keyboard"][0][0]["url"] == \
        "https://grim.example/d/pay_once"
    assert len([c for c in fake.sent("sendMessage", chat_id=user)
                if c.params["text"] == "Qualquer dúvida, responda aqui."]) == 1
    attempts = await pg_pool.fetchval(
        "SELECT attempts FROM bot_gateway.deliveries WHERE payment_id = 'pay_once'")
    assert attempts == 1


async def test_blocked_user_is_recorded_and_delivery_not_retried(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, publisher: EventPublisher,
) -> None:
    fake, _ = fake_tg
    bot = await _bot_with_funnel(make_bot, pg_pool)
    user = 8_400_000_000_001
    fake.blocked_chats.add(user)
    await bot.post(gateway, tg.start(bot.next_update_id(), user, None))
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT blocked_at IS NOT NULL FROM bot_gateway.users WHERE bot_id = $1", bot.id),
        message="blocked recorded")
    await publisher.publish(PaymentConfirmed(
        producer="tests", bot_id=bot.id, telegram_user_id=user, payment_id="pay_blocked",
        gateway="sandbox", gateway_event_id="g1", amount_cents=100, paid_at=utcnow()))
    reason = await wait_for(lambda: pg_pool.fetchval(
        "SELECT failed_reason FROM bot_gateway.deliveries WHERE payment_id = 'pay_blocked'"),
        message="delivery refused")
    assert "blocked" in reason
    # The user unblocks (my_chat_member) and comes back.
    fake.blocked_chats.discard(user)
    await bot.post(gateway, tg.my_chat_member(bot.next_update_id(), user, blocked=False))
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT blocked_at IS NULL FROM bot_gateway.users WHERE bot_id = $1", bot.id),
        message="unblocked")


async def test_telegram_outage_is_retried_without_a_second_binding(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg,
) -> None:
    fake, _ = fake_tg
    bot = await make_bot()
    user, token = 8_500_000_000_001, uuid.uuid4().hex
    # More failures than one pass of retries: the consumer must come back to the update.
    fake.fail(502, method="sendMessage", chat_id=user, count=5)
    await bot.post(gateway, tg.start(bot.next_update_id(), user, token))
    await wait_for(lambda: fake.sent("sendMessage", chat_id=user), timeout=30,
                   message="welcome after the outage")
    assert len(fake.sent("sendMessage", chat_id=user)) == 1
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM bot_gateway.user_tokens WHERE bot_id = $1", bot.id) == 1
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM outbox.events WHERE owner = 'bot_gateway' AND event_id LIKE $1",
        f"start_{bot.id}_%") == 1


async def test_every_update_type_is_handled_or_ignored_without_stopping_the_consumer(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg,
) -> None:
    fake, _ = fake_tg
    bot = await make_bot()
    user = 8_600_000_000_001
    odd = [tg.sticker(bot.next_update_id(), user), tg.edited(bot.next_update_id(), user, "x"),
           tg.channel_post(bot.next_update_id()), tg.text_message(bot.next_update_id(), user, "oi"),
           {"update_id": bot.next_update_id(), "message": "weird"},
           {"update_id": bot.next_update_id(), "brand_new_type": {"id": 1}},
           {"update_id": bot.next_update_id(), "callback_query": {"id": "1", "from": {}}}]
    for update in odd:
        assert (await bot.post(gateway, update)).status_code == 200
    await bot.post(gateway, tg.start(bot.next_update_id(), user, None))
    await wait_for(lambda: fake.sent("sendMessage", chat_id=user), message="start after odd ones")
    assert len(fake.sent("sendMessage", chat_id=user)) == 1
    metrics = (await gateway.get("/metrics")).text
    assert 'grim_bot_gateway_updates_total{result="ignored",update_type="channel_post"}' in metrics
    assert 'grim_bot_gateway_webhook_requests_total{outcome="accepted"}' in metrics


async def test_start_replayed_after_a_crash_replies_without_a_second_binding(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, gw_settings,
) -> None:
    from grim_bot_gateway.store import record_start
    from grim_schemas.events import BotStarted

    from grim.outbox import Outbox

    fake, _ = fake_tg
    bot = await make_bot()
    user, token, update_id = 8_700_000_000_001, uuid.uuid4().hex, bot.next_update_id()
    # A previous run committed the binding, then died before replying.
    first = BotStarted(event_id=f"start_{bot.id}_{update_id}", producer="bot-gateway",
                       bot_id=bot.id, telegram_user_id=user, chat_id=user,
                       update_id=update_id, payload=token, tracking_token=token)
    assert await record_start(pg_pool, Outbox("bot_gateway", gw_settings.namespace),
                              first) == "new"
    assert (await bot.post(gateway, tg.start(update_id, user, token))).status_code == 200
    await wait_for(lambda: fake.sent("sendMessage", chat_id=user), message="reply on replay")
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT replied_at IS NOT NULL FROM bot_gateway.processed_updates"
        " WHERE bot_id = $1 AND update_id = $2", bot.id, update_id), message="marked replied")
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM bot_gateway.user_tokens WHERE bot_id = $1", bot.id) == 1
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM outbox.events WHERE owner = 'bot_gateway' AND event_id = $1",
        first.event_id) == 1
    # The same update once more (Kafka redelivery): fully done, nothing sent.
    assert (await bot.post(gateway, tg.start(update_id, user, token))).status_code == 200
    sentinel = bot.next_update_id()
    await bot.post(gateway, tg.start(sentinel, user + 1, None))
    await wait_for(lambda: fake.sent("sendMessage", chat_id=user + 1), message="sentinel")
    assert len(fake.sent("sendMessage", chat_id=user)) == 1


async def test_delivery_claimed_by_a_crashed_worker_is_sent_once_after_the_lease(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_tg, publisher: EventPublisher,
) -> None:
    fake, _ = fake_tg
    bot = await make_bot()
    user = 8_800_000_000_001
    event = PaymentConfirmed(
        producer="tests", bot_id=bot.id, telegram_user_id=user, payment_id="pay_crashed",
        gateway="sandbox", gateway_event_id="g-crash", amount_cents=990, paid_at=utcnow(),
        delivery_url="https://grim.example/d/crashed")
    # Another worker claimed it a moment ago and died before Telegram answered.
    await pg_pool.execute(
        "INSERT INTO bot_gateway.deliveries (payment_id, bot_id, telegram_user_id, event_id,"
        " delivery_url, attempts, claimed_at) VALUES ($1, $2, $3, $4, $5, 1, now())",
        event.payment_id, bot.id, user, event.event_id, event.delivery_url)
    await publisher.publish(event)
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT sent_at IS NOT NULL FROM bot_gateway.deliveries WHERE payment_id = $1",
        event.payment_id), timeout=30, message="taken over after the lease")
    assert len([c for c in fake.sent("sendMessage", chat_id=user)
                if "https://grim.example/d/crashed" in c.params["text"]]) == 1
    assert await pg_pool.fetchval(
        "SELECT attempts FROM bot_gateway.deliveries WHERE payment_id = $1",
        event.payment_id) == 2


async def test_an_update_that_always_fails_is_parked_and_the_chat_goes_on(
    gateway: httpx.AsyncClient, make_bot, fake_tg, gw_settings,
) -> None:
    import orjson

    from tests.integration.bot_gateway.conftest import read_until

    fake, _ = fake_tg
    bot = await make_bot()
    user = 8_900_000_000_001
    poison = tg.start(bot.next_update_id(), user, None)
    poison["message"]["from"]["first_name"] = 12345   # not a string: BotStarted refuses it
    assert (await bot.post(gateway, poison)).status_code == 200
    await bot.post(gateway, tg.start(bot.next_update_id(), user, None))
    await wait_for(lambda: fake.sent("sendMessage", chat_id=user), message="next update handled")
    records = await read_until(
        gw_settings.kafka_bootstrap, f"{gw_settings.namespace}grim.dead-letters.v1",
        lambda rs: any(str(poison["update_id"]) in (r.value or b"").decode() for r in rs))
    parked = [orjson.loads(r.value) for r in records
              if str(poison["update_id"]) in r.value.decode()]
    assert parked[0]["group"] == gw_settings.group("bot-gateway-updates")
    assert "ValidationError" in parked[0]["reason"]


async def test_a_new_token_is_a_new_touch_and_an_organic_start_keeps_the_last_one(
    gateway: httpx.AsyncClient, make_bot, pg_pool, fake_payments,
) -> None:
    payments, _ = fake_payments
    bot = await _bot_with_funnel(make_bot, pg_pool)
    user = 8_950_000_000_001
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    for payload in (first, second, "bio_link"):
        await bot.post(gateway, tg.start(bot.next_update_id(), user, payload))
    await wait_for(lambda: pg_pool.fetchval(
        "SELECT count(*) = 3 FROM bot_gateway.user_tokens WHERE bot_id = $1", bot.id),
        message="three touches")
    rows = await pg_pool.fetch("SELECT tracking_token, payload FROM bot_gateway.user_tokens"
                               " WHERE bot_id = $1 ORDER BY id", bot.id)
    assert [(r["tracking_token"], r["payload"]) for r in rows] == [
        (first, first), (second, second), (None, "bio_link")]
    await bot.post(gateway, tg.callback(bot.next_update_id(), user, "pix:7", 777))
    await wait_for(lambda: any(r["telegram_user_id"] == user for r in payments.requests),
                   message="charge requested")
    request = [r for r in payments.requests if r["telegram_user_id"] == user][-1]
    assert request["tracking_token"] == second
