"""Kafka or PostgreSQL down: the visitor still reaches the bot and no click is lost."""

from __future__ import annotations

import re
import socket

from grim.db import create_pool
from grim.outbox import Outbox
from grim_redirect.settings import RedirectSettings
from grim_redirect.sink import ClickSink
from grim_redirect.spool import Spool
from grim_schemas import ClickRecorded
from tests.support import wait_for

from .conftest import running
from .redirect_support import clicks_for
from .test_redirect_clicks import CHROME, token_of


def dead_address() -> str:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def published_at(pg_pool, event_id: str):
    return await pg_pool.fetchval(
        "SELECT published_at FROM outbox.events WHERE owner = 'redirect' AND event_id = $1",
        event_id,
    )


async def test_kafka_down_visitor_redirected_then_click_published_once(
    redirect_settings: RedirectSettings, seed, pg_pool
):
    pool, (bot,) = await seed.pool(1)
    broken = redirect_settings.model_copy(update={"kafka_bootstrap": dead_address()})
    async with running(broken) as (app, client):
        response = await client.get(f"/go/{pool.slug}?fbclid=KDOWN",
                                    headers={"user-agent": CHROME})
        assert response.status_code == 200
        token = token_of(response.text)
        assert f"https://t.me/{bot.username}?start={token}" in response.text
        metrics = (await client.get("/metrics")).text
        assert 'grim_redirect_clicks_recorded_total{kind="visitor",path="outbox"}' in metrics
        assert "grim_redirect_kafka_connected 0.0" in metrics
        backlog = re.search(r'grim_outbox_backlog_records\{owner="redirect"\} ([\d.]+)', metrics)
        assert backlog and float(backlog.group(1)) >= 1
    row = await pg_pool.fetchrow(
        "SELECT event_id, published_at FROM outbox.events WHERE owner = 'redirect'"
        " AND convert_from(value, 'UTF8')::jsonb ->> 'tracking_token' = $1", token,
    )
    assert row is not None and row["published_at"] is None
    topic = redirect_settings.topic("click")
    assert await clicks_for(redirect_settings.kafka_bootstrap, topic, tracking_token=token) == []

    # Kafka "returns": the service restarts with a reachable broker.
    async with running(redirect_settings):
        await wait_for(lambda: published_at(pg_pool, row["event_id"]), timeout=20,
                       message="outbox relay publishes the click")
    events = await clicks_for(redirect_settings.kafka_bootstrap, topic, tracking_token=token)
    assert len(events) == 1
    assert events[0]["event_id"] == row["event_id"] and events[0]["fbclid"] == "KDOWN"


async def test_kafka_and_postgres_down_click_spooled_then_published_once(
    redirect_settings: RedirectSettings, seed, pg_pool
):
    pool, (bot,) = await seed.pool(1)
    dead_db = await create_pool(f"postgresql://grim:grim@{dead_address()}/grim", min_size=0)
    spool = Spool(redirect_settings.redirect_spool_dir)
    spool.open()
    sink = ClickSink(publisher=lambda: None, db=lambda: dead_db,
                     outbox=Outbox("redirect", redirect_settings.namespace), spool=spool)
    event = ClickRecorded(
        producer="redirect", tracking_token="c" * 32, pageview_event_id="evt_" + "c" * 32,
        pool_id=pool.id, pool_slug=pool.slug, bot_id=bot.id, bot_username=bot.username,
        fbclid="Spool-Ab.9_x", landing_url=f"https://go.example.com/go/{pool.slug}",
    )
    assert await sink.record(event) == "spool"
    assert spool.backlog == 1
    await dead_db.close()

    # A restart finds the spool, moves it to the outbox, and the relay publishes it.
    async with running(redirect_settings) as (app, client):
        await wait_for(lambda: published_at(pg_pool, event.event_id), timeout=20,
                       message="spooled click published")
        assert app.state.runtime.spool.backlog == 0
        metrics = (await client.get("/metrics")).text
        assert "grim_redirect_spool_backlog_records 0.0" in metrics
    events = await clicks_for(redirect_settings.kafka_bootstrap, redirect_settings.topic("click"),
                              tracking_token="c" * 32)
    assert [e["event_id"] for e in events] == [event.event_id]
    assert events[0]["fbclid"] == "Spool-Ab.9_x"
