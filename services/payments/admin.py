"""Admin API for products and gateway accounts: `router` (no auth inside).

The admin app that mounts it enforces GRIM_ADMIN_TOKEN and provides the
database through `app.state.payments_admin = AdminContext(pool, box)` (or
`app.dependency_overrides[admin_context]`). The payments service mounts it
itself under /admin, behind the admin token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from grim.crypto import SecretBox

from . import catalog
from .gateway_base import GATEWAYS


@dataclass(frozen=True)
class AdminContext:
    pool: asyncpg.Pool
    box: SecretBox


def admin_context(request: Request) -> AdminContext:
    state = request.app.state
    context = getattr(state, "payments_admin", None)
    if context is not None:
        return context
    payments = getattr(state, "payments", None)
    if payments is None:
        raise HTTPException(503, "payments admin is not wired to a database")
    return AdminContext(payments.pool, payments.box)


Ctx = Annotated[AdminContext, Depends(admin_context)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    gateway: str = Field(description=f"one of {', '.join(GATEWAYS)}")
    credentials: dict[str, str] = Field(
        description="mercadopago: access_token; pushinpay: token; woovi: app_id; sandbox: api_key")
    webhook_secret: str | None = Field(default=None, max_length=500)
    pix_key: str | None = Field(default=None, max_length=77)


class AccountPublic(BaseModel):
    id: int
    name: str
    gateway: str
    pix_key: str | None
    enabled: bool
    has_webhook_secret: bool


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(gt=0)
    gateway_account_id: int
    delivery_content: str = Field(default="", max_length=20000)
    expires_in_seconds: int = Field(default=1800, ge=60, le=604800)


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    price_cents: int | None = Field(default=None, gt=0)
    gateway_account_id: int | None = None
    delivery_content: str | None = Field(default=None, max_length=20000)
    expires_in_seconds: int | None = Field(default=None, ge=60, le=604800)
    enabled: bool | None = None


class ProductPublic(BaseModel):
    id: int
    name: str
    price_cents: int
    currency: str
    delivery_content: str
    gateway_account_id: int
    expires_in_seconds: int
    enabled: bool


router = APIRouter(tags=["payments admin"])


@router.get("/gateway-accounts", response_model=list[AccountPublic])
async def list_accounts(ctx: Ctx) -> list[AccountPublic]:
    return [AccountPublic(**asdict(a)) for a in await catalog.list_accounts(ctx.pool)]


@router.post("/gateway-accounts", response_model=AccountPublic, status_code=201)
async def add_account(body: AccountCreate, ctx: Ctx) -> AccountPublic:
    """Register a gateway account; credentials and webhook secret are stored encrypted."""
    try:
        info = await catalog.add_account(ctx.pool, ctx.box, **body.model_dump())
    except catalog.CatalogError as exc:
        raise HTTPException(409 if "already exists" in str(exc) else 400, str(exc)) from exc
    return AccountPublic(**asdict(info))


@router.get("/products", response_model=list[ProductPublic])
async def list_products(ctx: Ctx) -> list[ProductPublic]:
    return [ProductPublic(**asdict(p)) for p in await catalog.list_products(ctx.pool)]


@router.get("/products/{product_id}", response_model=ProductPublic)
async def get_product(product_id: int, ctx: Ctx) -> ProductPublic:
    product = await catalog.get_product(ctx.pool, product_id, include_disabled=True)
    if product is None:
        raise HTTPException(404, f"no product {product_id}")
    return ProductPublic(**asdict(product))


@router.post("/products", response_model=ProductPublic, status_code=201)
async def add_product(body: ProductCreate, ctx: Ctx) -> ProductPublic:
    try:
        product = await catalog.add_product(ctx.pool, **body.model_dump())
    except catalog.CatalogError as exc:
        raise HTTPException(400, str(exc)) from exc
    return ProductPublic(**asdict(product))


@router.patch("/products/{product_id}", response_model=ProductPublic)
async def update_product(product_id: int, body: ProductUpdate, ctx: Ctx) -> ProductPublic:
    try:
        product = await catalog.update_product(ctx.pool, product_id,
                                               **body.model_dump(exclude_none=True))
    except catalog.CatalogError as exc:
        raise HTTPException(404 if str(exc).startswith("no product") else 400, str(exc)) from exc
    return ProductPublic(**asdict(product))
