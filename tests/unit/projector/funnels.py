"""Synthetic funnels with known answers, shared by the projector's unit and integration tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from grim_schemas import Event
from grim_schemas.events import (
    BotStarted,
    ClickCookiesReported,
    ClickRecorded,
    DeliveryOpened,
    Payer,
    PaymentConfirmed,
    PaymentExpired,
    PaymentRefunded,
    PixGenerated,
)

PIXEL = "123456789012345"


@dataclass
class Expected:
    conversions: set[tuple[str, str]] = field(default_factory=set)  # (event_name, event_id)
    payments: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # id -> (token, kind)
    tokens: set[str] = field(default_factory=set)
    revenue_cents: dict[str, int] = field(default_factory=dict)  # payment -> cents (paid only)


def _hex(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def funnel(rng: random.Random, base: datetime, i: int, *, bot_id: int = 7001,
           second_touch: bool = False) -> tuple[list[Event], Expected]:
    """One user's journey: click, cookies, /start, PIX, maybe paid/refund/expiry/delivery.

    With `second_touch`, the user clicks a second ad two hours later and pays after it:
    rule v1 (last touch) credits the second token, v2 (first touch) the first.
    """
    exp = Expected()
    user = 10_000_000_000 + i
    t0 = base + timedelta(minutes=i)
    tokens = [_hex(rng)] + ([_hex(rng)] if second_touch else [])
    events: list[Event] = []
    crawler = rng.random() < 0.05
    for n, token in enumerate(tokens):
        at = t0 + timedelta(hours=2 * n)
        click = ClickRecorded(
            producer="redirect", occurred_at=at, tracking_token=token,
            pageview_event_id=f"evt_{token}", pool_id=1 + i % 3, pool_slug=f"pool{1 + i % 3}",
            bot_id=bot_id, bot_username="salesbot", pixel_id=PIXEL,
            fbclid=f"IwAR{token[:12]}", fbc=f"fb.1.{int(at.timestamp() * 1000)}.IwAR{token[:12]}",
            fbp=f"fb.1.1700000000000.{i}", fbc_origin="generated",
            utm_campaign=f"camp{i % 4}", utm_content=f"ad{i % 5}", client_ip="203.0.113.7",
            user_agent="Mozilla/5.0 test", landing_url=f"https://t.example/go/pool{1 + i % 3}",
            is_crawler=crawler and n == 0)
        events.append(click)
        exp.tokens.add(token)
        if not click.is_crawler:
            exp.conversions.add(("PageView", f"evt_{token}"))
        if rng.random() < 0.5:
            events.append(ClickCookiesReported(
                producer="redirect", occurred_at=at + timedelta(seconds=1), tracking_token=token,
                fbp=f"fb.1.1700000000001.{i}", fbc=click.fbc))
        events.append(BotStarted(
            producer="bot-gateway", occurred_at=at + timedelta(seconds=20), bot_id=bot_id,
            telegram_user_id=user, chat_id=user, update_id=i * 10 + n, payload=token,
            tracking_token=token))
        if not click.is_crawler:
            exp.conversions.add(("ViewContent", f"viewcontent_{token}"))
    crawled = {e.tracking_token for e in events if isinstance(e, ClickRecorded) and e.is_crawler}
    credited = tokens[-1]
    pay_at = t0 + timedelta(hours=2 * (len(tokens) - 1), minutes=3)
    payment = f"pay_{i:05d}"
    cents = 1990 + 100 * (i % 7)
    events.append(PixGenerated(
        producer="payments", occurred_at=pay_at, bot_id=bot_id, telegram_user_id=user,
        payment_id=payment, product_id=40 + i % 3, amount_cents=cents, gateway="sandbox",
        gateway_charge_id=f"ch_{i}", tracking_token=credited))
    exp.payments[payment] = (credited, "token")
    ok = credited not in crawled
    if ok:
        exp.conversions.add(("InitiateCheckout", f"checkout_{payment}"))
    fate = rng.random()
    if fate < 0.6:
        paid_at = pay_at + timedelta(minutes=2)
        events.append(PaymentConfirmed(
            producer="payments", occurred_at=paid_at, bot_id=bot_id, telegram_user_id=user,
            payment_id=payment, gateway="sandbox", gateway_event_id=f"ge_{i}",
            amount_cents=cents, paid_at=paid_at, product_id=40 + i % 3,
            payer=Payer(name="Maria Silva", email=f"m{i}@example.com", phone="+5511999990000")))
        exp.revenue_cents[payment] = cents
        if ok:
            exp.conversions.add(("Purchase", f"purchase_{payment}"))
        events.append(DeliveryOpened(
            producer="payments", occurred_at=paid_at + timedelta(minutes=1), bot_id=bot_id,
            telegram_user_id=user, payment_id=payment, opened_at=paid_at + timedelta(minutes=1)))
        if rng.random() < 0.1:
            events.append(PaymentRefunded(
                producer="payments", occurred_at=paid_at + timedelta(days=1), bot_id=bot_id,
                telegram_user_id=user, payment_id=payment, gateway="sandbox",
                gateway_event_id=f"gr_{i}", amount_cents=cents,
                refunded_at=paid_at + timedelta(days=1)))
    elif fate < 0.8:
        events.append(PaymentExpired(
            producer="payments", occurred_at=pay_at + timedelta(hours=1), bot_id=bot_id,
            telegram_user_id=user, payment_id=payment, expired_at=pay_at + timedelta(hours=1)))
    return events, exp


def organic(base: datetime, i: int, *, bot_id: int = 7001) -> tuple[list[Event], Expected]:
    """A user who found the bot without an ad and paid."""
    exp = Expected()
    user = 20_000_000_000 + i
    at = base + timedelta(minutes=i)
    payment = f"org_{i:05d}"
    events: list[Event] = [
        BotStarted(producer="bot-gateway", occurred_at=at, bot_id=bot_id, telegram_user_id=user,
                   chat_id=user, update_id=900_000 + i),
        PixGenerated(producer="payments", occurred_at=at + timedelta(minutes=1), bot_id=bot_id,
                     telegram_user_id=user, payment_id=payment, product_id=40, amount_cents=990,
                     gateway="sandbox", gateway_charge_id=f"och_{i}"),
        PaymentConfirmed(producer="payments", occurred_at=at + timedelta(minutes=2),
                         bot_id=bot_id, telegram_user_id=user, payment_id=payment,
                         gateway="sandbox", gateway_event_id=f"oge_{i}", amount_cents=990,
                         paid_at=at + timedelta(minutes=2)),
    ]
    exp.payments[payment] = (None, "organic")
    exp.revenue_cents[payment] = 990
    return events, exp


def build(n_funnels: int, n_organic: int, *, seed: int = 7, second_touch_every: int = 10,
          base: datetime | None = None) -> tuple[list[Event], Expected]:
    rng = random.Random(seed)
    base = base or datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    events: list[Event] = []
    total = Expected()
    parts = [funnel(rng, base, i, second_touch=(i % second_touch_every == 1))
             for i in range(n_funnels)]
    parts += [organic(base, i) for i in range(n_organic)]
    for evs, exp in parts:
        events += evs
        total.conversions |= exp.conversions
        total.payments.update(exp.payments)
        total.tokens |= exp.tokens
        total.revenue_cents.update(exp.revenue_cents)
    return events, total
