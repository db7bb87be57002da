"""Admin API for pools, their bots and pixels (mounted by the admin app behind bearer auth).

The router holds no auth of its own: the admin app that mounts it enforces
`Authorization: Bearer GRIM_ADMIN_TOKEN`. It expects `app.state.db` (an asyncpg
pool) and `app.state.settings` (GrimSettings, for GRIM_SECRET_KEY).
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from grim.config import pixels as pixel_repo
from grim.config import pools as pool_repo
from grim.crypto import SecretBox

router = APIRouter(tags=["pools and pixels"])

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
PIXEL_ID = r"^[0-9]{1,32}$"


def _db(request: Request) -> asyncpg.Pool:
    return request.app.state.db


def _box(request: Request) -> SecretBox:
    return SecretBox(request.app.state.settings.secret_key.get_secret_value())


Db = Annotated[asyncpg.Pool, Depends(_db)]
Box = Annotated[SecretBox, Depends(_box)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolCreate(_Strict):
    slug: str = Field(pattern=SLUG, description="The link is /go/<slug>")
    name: str = Field(default="", max_length=200)
    enabled: bool = True
    pixel_id: str | None = Field(default=None, pattern=PIXEL_ID)


class PoolUpdate(_Strict):
    name: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None
    pixel_id: str | None = Field(default=None, pattern=PIXEL_ID,
                                 description="null detaches the pixel; omit to keep it")


class PoolBotSet(_Strict):
    weight: int | None = Field(default=None, ge=1, le=1000)
    enabled: bool | None = None


class PoolBotPublic(BaseModel):
    bot_id: int
    username: str
    weight: int
    enabled: bool
    usable: bool


class PoolPublic(BaseModel):
    id: int
    slug: str
    name: str
    enabled: bool
    pixel_id: str | None
    bots: list[PoolBotPublic]


class PixelSet(_Strict):
    name: str = Field(default="", max_length=200)
    access_token: str | None = Field(default=None, min_length=10, max_length=1000,
                                     description="CAPI token, stored encrypted; omit to keep")
    enabled_events: list[str] = Field(default_factory=lambda: list(pixel_repo.ALL_EVENTS))
    test_event_code: str | None = Field(default=None, max_length=64)
    action_source: str = Field(default="website",
                               pattern=r"^(website|chat|system_generated|other)$")


class PixelPublic(BaseModel):
    pixel_id: str
    name: str
    enabled_events: list[str]
    test_event_code: str | None
    action_source: str
    has_access_token: bool
    flagged_reason: str | None


def pool_public(pool: pool_repo.Pool) -> PoolPublic:
    return PoolPublic(
        id=pool.id, slug=pool.slug, name=pool.name, enabled=pool.enabled, pixel_id=pool.pixel_id,
        bots=[PoolBotPublic(bot_id=b.bot_id, username=b.username, weight=b.weight,
                            enabled=b.enabled, usable=b.usable) for b in pool.bots],
    )


def pixel_public(pixel: pixel_repo.Pixel) -> PixelPublic:
    data: dict[str, Any] = dict(pixel.__dict__)
    data["enabled_events"] = list(pixel.enabled_events)
    return PixelPublic(**data)


def _refused(exc: pool_repo.PoolError) -> HTTPException:
    status = 409 if "already exists" in str(exc) else 404 if "unknown pool" in str(exc) else 422
    return HTTPException(status_code=status, detail=str(exc))


@router.post("/pools", status_code=201, response_model=PoolPublic, summary="Create a pool")
async def create_pool(body: PoolCreate, db: Db) -> PoolPublic:
    try:
        return pool_public(await pool_repo.create_pool(db, **body.model_dump()))
    except pool_repo.PoolError as exc:
        raise _refused(exc) from exc


@router.get("/pools", response_model=list[PoolPublic], summary="List pools with their bots")
async def list_pools(db: Db) -> list[PoolPublic]:
    return [pool_public(p) for p in await pool_repo.list_pools(db)]


@router.get("/pools/{slug}", response_model=PoolPublic, responses={404: {}})
async def get_pool(slug: str, db: Db) -> PoolPublic:
    pool = await pool_repo.get_pool(db, slug)
    if pool is None:
        raise HTTPException(status_code=404, detail=f"unknown pool {slug!r}")
    return pool_public(pool)


@router.patch("/pools/{slug}", response_model=PoolPublic, responses={404: {}, 422: {}},
              summary="Rename, pause/resume, or change the pixel of a pool")
async def update_pool(slug: str, body: PoolUpdate, db: Db) -> PoolPublic:
    changes = body.model_dump(exclude_unset=True)
    try:
        pool = await pool_repo.update_pool(db, slug, **changes)
    except pool_repo.PoolError as exc:
        raise _refused(exc) from exc
    if pool is None:
        raise HTTPException(status_code=404, detail=f"unknown pool {slug!r}")
    return pool_public(pool)


@router.put("/pools/{slug}/bots/{bot_id}", response_model=PoolPublic,
            responses={404: {}, 422: {}}, summary="Add a bot to a pool or change its weight")
async def set_pool_bot(slug: str, bot_id: int, body: PoolBotSet, db: Db) -> PoolPublic:
    try:
        return pool_public(await pool_repo.set_pool_bot(db, slug, bot_id, **body.model_dump()))
    except pool_repo.PoolError as exc:
        raise _refused(exc) from exc


@router.delete("/pools/{slug}/bots/{bot_id}", status_code=204, responses={404: {}})
async def remove_pool_bot(slug: str, bot_id: int, db: Db) -> None:
    if not await pool_repo.remove_pool_bot(db, slug, bot_id):
        raise HTTPException(status_code=404, detail=f"bot {bot_id} is not in pool {slug!r}")


@router.put("/pixels/{pixel_id}", response_model=PixelPublic, responses={422: {}},
            summary="Create or update a pixel (the CAPI token is stored encrypted)")
async def set_pixel(pixel_id: str, body: PixelSet, db: Db, box: Box) -> PixelPublic:
    if not pixel_id.isdigit() or len(pixel_id) > 32:
        raise HTTPException(status_code=422, detail="a pixel id is 1-32 digits")
    data = body.model_dump()
    data["enabled_events"] = tuple(data["enabled_events"])
    try:
        pixel = await pixel_repo.upsert_pixel(db, box, pixel_id=pixel_id, **data)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return pixel_public(pixel)


@router.get("/pixels", response_model=list[PixelPublic], summary="List pixels (no tokens)")
async def list_pixels(db: Db) -> list[PixelPublic]:
    return [pixel_public(p) for p in await pixel_repo.list_pixels(db)]


@router.get("/pixels/{pixel_id}", response_model=PixelPublic, responses={404: {}})
async def get_pixel(pixel_id: str, db: Db) -> PixelPublic:
    pixel = await pixel_repo.get_pixel(db, pixel_id)
    if pixel is None:
        raise HTTPException(status_code=404, detail=f"unknown pixel {pixel_id!r}")
    return pixel_public(pixel)
