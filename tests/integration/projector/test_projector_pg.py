"""The batched Postgres writes against the in-memory reference of the same upserts.

One statement per table and batch folds the rows of a key first; these tests feed
batches full of repeats (redelivered facts, re-decisions in both orders, several
stages of one payment) and check the tables hold what applying the rows one by one
would give, and that writing a batch again changes nothing.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from grim_projector.journeys import Effects
from grim_projector.pg_projection import PgProjection
from grim_projector.timeutil import ms_to_iso
from grim_schemas import ConversionRequested, encode

from grim.db import create_pool
from grim.settings import GrimSettings
from tests.conftest import create_database, drop_database
from tests.unit.projector.sim import MemoryProjection

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
TOKENS = ["a" * 32, "b" * 32, "c" * 32]


@pytest.fixture(scope="module")
async def pg(grim_settings: GrimSettings, stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    admin = stack_env["GRIM_DATABASE_URL"]
    dsn = await create_database(admin, f"grim_test_projector_pg_{uuid.uuid4().hex[:8]}")
    pool = await create_pool(dsn, max_size=2)
    yield pool
    await pool.close()
    await drop_database(admin, dsn)


def _at(minutes: int) -> str:
    return ms_to_iso(int((T0 + timedelta(minutes=minutes)).timestamp() * 1000))


def _effects(rng: random.Random) -> Effects:
    """A batch where every key repeats: the shapes the join produces, shuffled."""
    fx = Effects()
    for n, token in enumerate(TOKENS):
        fx.token_rows += [{"tracking_token": token, "pool_id": 1, "pool_slug": "p", "bot_id": 7,
                           "bot_username": "b", "pixel_id": "px", "clicked_at": _at(n),
                           "is_crawler": False, "utm_campaign": f"c{k}",
                           "campaign_params": {"k": k}} for k in range(2)]
        fx.cookie_rows += [{"tracking_token": token, "cookie_fbc": "fbc1", "cookie_fbp": None},
                           {"tracking_token": token, "cookie_fbc": None, "cookie_fbp": "fbp2"}]
    for p in range(4):
        for stage, column in (("pix_generated", "pix_at"), ("paid", "paid_at"),
                              ("delivered", "delivered_at")):
            for decided, token in ((rng.randint(1, 3), TOKENS[p % 3]), (2, None)):
                att = {"source_event_id": f"{stage}-{p}", "stage": stage,
                       "tracking_token": token, "attribution": "token" if token else "organic",
                       "bot_id": 7, "telegram_user_id": 9, "payment_id": f"pay{p}",
                       "occurred_at": _at(10 + p), "amount_cents": 1990,
                       "decided_at": _at(100 + decided)}
                fx.fact_rows.append(att)
                row: dict[str, Any] = {c: None for c in (
                    "product_id", "amount_cents", "pix_at", "paid_at", "refunded_at",
                    "refunded_cents", "expired_at", "delivered_at")}
                row.update(payment_id=f"pay{p}", bot_id=7, telegram_user_id=9,
                           tracking_token=token, attribution=att["attribution"],
                           decided_at=att["decided_at"], **{column: _at(20 + p)})
                if stage != "delivered":
                    row.update(amount_cents=1990 + p, product_id=3)
                fx.payment_rows.append(row)
    for token in TOKENS:
        conv = ConversionRequested(producer="projector", event_name="PageView",
                                   event_id=f"evt_{token}", event_time=T0, pixel_id="px",
                                   tracking_token=token)
        fx.conversions += [orjson.loads(encode(conv))] * 2
    for rows in (fx.token_rows, fx.cookie_rows, fx.fact_rows, fx.payment_rows):
        rng.shuffle(rows)
    return fx


async def _tables(pool: asyncpg.Pool, projection: str) -> dict[str, Any]:
    def stamp(value: Any) -> Any:
        return ms_to_iso(int(value.timestamp() * 1000)) if isinstance(value, datetime) else value

    out: dict[str, Any] = {}
    for table, key, cols in (
            ("tokens", "tracking_token", ("utm_campaign, campaign_params, clicked_at, "
                                          "cookie_fbc, cookie_fbp")),
            ("facts", "source_event_id", "tracking_token, attribution, decided_at, stage"),
            ("payments", "payment_id", ("tracking_token, attribution, decided_at, "
                                        "amount_cents, product_id, pix_at, paid_at, "
                                        "delivered_at")),
            ("conversions", "event_id", "event_name, tracking_token")):
        rows = await pool.fetch(f"SELECT {key}, {cols} FROM projector.{table} "
                                "WHERE projection = $1", projection)
        out[table] = {r[key]: {k: stamp(v) for k, v in r.items() if k != key} for r in rows}
    return out


async def _reference(batches: list[Effects]) -> dict[str, Any]:
    """The same rows applied one by one, by the in-memory projection the unit tests use."""
    mem = MemoryProjection()
    for fx in batches:
        await mem.write(fx)
    pick = {"tokens": ("utm_campaign", "campaign_params", "clicked_at", "cookie_fbc",
                       "cookie_fbp"),
            "facts": ("tracking_token", "attribution", "decided_at", "stage"),
            "payments": ("tracking_token", "attribution", "decided_at", "amount_cents",
                         "product_id", "pix_at", "paid_at", "delivered_at")}
    out: dict[str, Any] = {name: {k: {c: row.get(c) for c in cols}
                                  for k, row in getattr(mem, name).items()}
                           for name, cols in pick.items()}
    out["conversions"] = {k: {"event_name": c["event_name"], "tracking_token": c["tracking_token"]}
                          for k, c in mem.conversions.items()}
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_full_of_repeats_gives_the_rows_of_one_by_one_upserts(
        pg: asyncpg.Pool, seed: int) -> None:
    projection = PgProjection(pg, f"fold-{seed}", "app", 1)
    await projection.register()
    fx = _effects(random.Random(seed))
    await projection.write(fx)
    expected = await _reference([fx])
    assert await _tables(pg, f"fold-{seed}") == expected
    assert expected["payments"]["pay0"]["delivered_at"] and expected["tokens"][TOKENS[0]][
        "cookie_fbp"] == "fbp2"

    await projection.write(fx)  # redelivered whole
    assert await _tables(pg, f"fold-{seed}") == expected


async def test_split_batches_and_redelivery_give_the_rows_of_one_by_one_upserts(
        pg: asyncpg.Pool) -> None:
    fx = _effects(random.Random(7))
    parts = [Effects(fx.token_rows[i::3], fx.cookie_rows[i::3], fx.fact_rows[i::3],
                     fx.payment_rows[i::3], fx.conversions[i::3]) for i in range(3)]
    sequence = [*parts, parts[1], parts[0]]  # a crash redelivers two of them
    split = PgProjection(pg, "split", "app", 1)
    await split.register()
    for part in sequence:
        await split.write(part)
    assert await _tables(pg, "split") == await _reference(sequence)
