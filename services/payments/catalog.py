"""Products and gateway accounts (tables payments.products, payments.gateway_accounts).

Credentials and webhook secrets are stored encrypted with GRIM_SECRET_KEY; only
`load_account` decrypts them, for the duration of a gateway call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from grim.crypto import SecretBox

from .gateway_base import GATEWAYS, Account

# The credential each gateway's adapter needs.
REQUIRED_CREDENTIAL = {
    "mercadopago": "access_token", "pushinpay": "token", "woovi": "app_id", "sandbox": "api_key",
}
# Gateways whose webhooks are verified by signature need the secret.
NEEDS_WEBHOOK_SECRET = {"mercadopago", "sandbox"}

Db = asyncpg.Connection | asyncpg.Pool


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class AccountInfo:
    id: int
    name: str
    gateway: str
    pix_key: str | None
    enabled: bool
    has_webhook_secret: bool


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    price_cents: int
    currency: str
    delivery_content: str
    gateway_account_id: int
    expires_in_seconds: int
    enabled: bool


def _info(row: asyncpg.Record) -> AccountInfo:
    return AccountInfo(id=row["id"], name=row["name"], gateway=row["gateway"],
                       pix_key=row["pix_key"], enabled=row["enabled"],
                       has_webhook_secret=row["webhook_secret_enc"] is not None)


async def add_account(
    db: Db, box: SecretBox, *, name: str, gateway: str, credentials: dict[str, str],
    webhook_secret: str | None = None, pix_key: str | None = None,
) -> AccountInfo:
    if gateway not in GATEWAYS:
        raise CatalogError(f"unknown gateway {gateway!r}; one of {', '.join(GATEWAYS)}")
    needed = REQUIRED_CREDENTIAL[gateway]
    if not credentials.get(needed):
        raise CatalogError(f"{gateway} needs the credential {needed!r}")
    if gateway in NEEDS_WEBHOOK_SECRET and not webhook_secret:
        raise CatalogError(f"{gateway} signs its webhooks: a webhook secret is required")
    if gateway == "sandbox" and not pix_key:
        raise CatalogError("the sandbox gateway needs a PIX key for its BR Codes")
    try:
        row = await db.fetchrow(
            "INSERT INTO payments.gateway_accounts"
            " (name, gateway, credentials_enc, webhook_secret_enc, pix_key)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING *",
            name, gateway, box.encrypt(orjson.dumps(credentials).decode()),
            box.encrypt(webhook_secret) if webhook_secret else None, pix_key,
        )
    except asyncpg.UniqueViolationError as exc:
        raise CatalogError(f"a gateway account named {name!r} already exists") from exc
    return _info(row)


async def list_accounts(db: Db) -> list[AccountInfo]:
    rows = await db.fetch("SELECT * FROM payments.gateway_accounts ORDER BY id")
    return [_info(r) for r in rows]


async def load_account(db: Db, box: SecretBox, account_id: int) -> Account | None:
    row = await db.fetchrow(
        "SELECT * FROM payments.gateway_accounts WHERE id = $1 AND enabled", account_id
    )
    if row is None:
        return None
    secret = row["webhook_secret_enc"]
    return Account(
        id=row["id"], name=row["name"], gateway=row["gateway"],
        credentials=orjson.loads(box.decrypt(row["credentials_enc"])),
        webhook_secret=box.decrypt(secret) if secret is not None else None,
        pix_key=row["pix_key"],
    )


def _product(row: asyncpg.Record) -> Product:
    return Product(**{k: row[k] for k in Product.__dataclass_fields__})


async def add_product(
    db: Db, *, name: str, price_cents: int, gateway_account_id: int,
    delivery_content: str = "", expires_in_seconds: int = 1800,
) -> Product:
    if price_cents <= 0:
        raise CatalogError("price must be a positive number of cents")
    if not await db.fetchval("SELECT 1 FROM payments.gateway_accounts WHERE id = $1",
                             gateway_account_id):
        raise CatalogError(f"no gateway account {gateway_account_id}")
    row = await db.fetchrow(
        "INSERT INTO payments.products"
        " (name, price_cents, gateway_account_id, delivery_content, expires_in_seconds)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        name, price_cents, gateway_account_id, delivery_content, expires_in_seconds,
    )
    return _product(row)


_UPDATABLE = ("name", "price_cents", "delivery_content", "gateway_account_id",
              "expires_in_seconds", "enabled")


async def update_product(db: Db, product_id: int, **changes: Any) -> Product:
    fields = {k: v for k, v in changes.items() if v is not None}
    unknown = set(fields) - set(_UPDATABLE)
    if unknown:
        raise CatalogError(f"cannot update {', '.join(sorted(unknown))}")
    if "price_cents" in fields and fields["price_cents"] <= 0:
        raise CatalogError("price must be a positive number of cents")
    if not fields:
        product = await get_product(db, product_id, include_disabled=True)
        if product is None:
            raise CatalogError(f"no product {product_id}")
        return product
    assignments = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
    try:
        row = await db.fetchrow(
            f"UPDATE payments.products SET {assignments}, updated_at = now()"
            " WHERE id = $1 RETURNING *",
            product_id, *fields.values(),
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise CatalogError(f"no gateway account {fields.get('gateway_account_id')}") from exc
    if row is None:
        raise CatalogError(f"no product {product_id}")
    return _product(row)


async def get_product(db: Db, product_id: int, *, include_disabled: bool = False
                      ) -> Product | None:
    row = await db.fetchrow("SELECT * FROM payments.products WHERE id = $1", product_id)
    if row is None or (not row["enabled"] and not include_disabled):
        return None
    return _product(row)


async def list_products(db: Db) -> list[Product]:
    return [_product(r) for r in await db.fetch("SELECT * FROM payments.products ORDER BY id")]
