"""The demo seller: two bots with a funnel, a pool, a pixel, a sandbox gateway account and
two products, created through each area's own repository functions (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from grim.config import bots as bot_repo
from grim.config import pixels as pixel_repo
from grim.config import pools as pool_repo
from grim.crypto import SecretBox
from grim.demo.settings import DemoSettings

POOL_SLUG = "demo"
ACCOUNT_NAME = "demo-sandbox"
SANDBOX_API_KEY = "demo-sandbox-api-key"
# Shapes Telegram accepts (digits:35 chars); the fake Telegram knows no other bots.
DEMO_BOTS = (
    ("7000000001:AAdemoBotOneTokenForTheSandbox00000", "grim_demo_one_bot"),
    ("7000000002:AAdemoBotTwoTokenForTheSandbox00000", "grim_demo_two_bot"),
)
PRODUCTS = (("Curso Completo", 4790), ("Mentoria Express", 1990))


@dataclass(frozen=True)
class SeededBot:
    id: int
    username: str
    token: str
    webhook_secret: str


@dataclass(frozen=True)
class DemoSeller:
    pool_slug: str
    pixel_id: str
    bots: tuple[SeededBot, ...]
    product_prices: dict[int, int]
    gateway_account_id: int
    sandbox_api_key: str

    def bot_by_username(self, username: str) -> SeededBot:
        return next(b for b in self.bots if b.username == username)


async def _account(db: asyncpg.Pool, box: SecretBox, webhook_secret: str) -> int:
    from grim_payments import catalog

    for account in await catalog.list_accounts(db):
        if account.name == ACCOUNT_NAME:
            return account.id
    created = await catalog.add_account(
        db, box, name=ACCOUNT_NAME, gateway="sandbox",
        credentials={"api_key": SANDBOX_API_KEY}, webhook_secret=webhook_secret,
        pix_key="demo@grim.example")
    return created.id


async def _products(db: asyncpg.Pool, account_id: int) -> dict[int, int]:
    from grim_payments import catalog

    existing = {p.name: p for p in await catalog.list_products(db)}
    prices = {}
    for name, cents in PRODUCTS:
        product = existing.get(name) or await catalog.add_product(
            db, name=name, price_cents=cents, gateway_account_id=account_id,
            delivery_content="https://example.com/area-de-membros", expires_in_seconds=1800)
        prices[product.id] = product.price_cents
    return prices


async def _bots(db: asyncpg.Pool, box: SecretBox, prices: dict[int, int]
                ) -> tuple[SeededBot, ...]:
    from grim_bot_gateway import store
    from grim_bot_gateway.funnel import FunnelConfig, Offer

    names = dict(zip([p[0] for p in PRODUCTS], prices, strict=True))
    funnel = FunnelConfig(
        welcome_text="Olá, {name}! Que bom ter você aqui.",
        offer_text="Escolha sua oferta:",
        offers=[Offer(product_id=pid, name=name, price_cents=prices[pid])
                for name, pid in names.items()],
    )
    seeded = []
    for token, username in DEMO_BOTS:
        bot_id = bot_repo.bot_id_from_token(token)
        secrets = await bot_repo.get_bot_secrets(db, box, bot_id)
        # Keep the webhook secret across runs: a running simulator or Telegram knows it.
        secret = secrets.webhook_secret if secrets else None
        await bot_repo.upsert_bot(db, box, token=token, username=username, webhook_secret=secret)
        stored = await bot_repo.get_bot_secrets(db, box, bot_id)
        assert stored is not None
        await store.set_funnel(db, bot_id, funnel)
        seeded.append(SeededBot(bot_id, username, token, stored.webhook_secret))
    return tuple(seeded)


async def _pool(db: asyncpg.Pool, pixel_id: str, bots: tuple[SeededBot, ...]) -> None:
    if await pool_repo.get_pool(db, POOL_SLUG) is None:
        await pool_repo.create_pool(db, slug=POOL_SLUG, name="Demo", pixel_id=pixel_id)
    else:
        await pool_repo.update_pool(db, POOL_SLUG, enabled=True, pixel_id=pixel_id)
    for bot in bots:
        await pool_repo.set_pool_bot(db, POOL_SLUG, bot.id, weight=1, enabled=True)


async def register_webhooks(settings: DemoSettings, bots: tuple[SeededBot, ...]) -> None:
    """setWebhook for each bot against the configured Telegram (the fake one in the demo)."""
    from grim_bot_gateway.directory import BotEntry
    from grim_bot_gateway.settings import BotGatewaySettings
    from grim_bot_gateway.webhook_setup import set_webhook

    gw = BotGatewaySettings(**{
        **settings.model_dump(exclude={"secret_key", "admin_token", "service_token"}),
        "telegram_api_base": settings.telegram_url,
        "bot_gateway_public_url": settings.bot_gateway_url,
    })
    for bot in bots:
        await set_webhook(gw, BotEntry(bot.id, bot.username, True, bot.token, bot.webhook_secret))


async def seed_demo(settings: DemoSettings, db: asyncpg.Pool) -> DemoSeller:
    from grim_payments.settings import PaymentsSettings

    box = SecretBox(settings.secret_key.get_secret_value())
    access_token = (settings.demo_meta_access_token.get_secret_value()
                    if settings.real_meta and settings.demo_meta_access_token
                    else "sandbox-access-token")
    await pixel_repo.upsert_pixel(
        db, box, pixel_id=settings.pixel_id, name="Demo pixel", access_token=access_token,
        test_event_code=settings.demo_test_event_code if settings.real_meta else None)
    account_id = await _account(db, box, PaymentsSettings().sandbox_webhook_secret)
    prices = await _products(db, account_id)
    bots = await _bots(db, box, prices)
    await _pool(db, settings.pixel_id, bots)
    return DemoSeller(POOL_SLUG, settings.pixel_id, bots, prices, account_id, SANDBOX_API_KEY)
