"""/go against the real stack: one click, one event, byte for byte."""

from __future__ import annotations

import asyncio
import re

from grim.config.pools import update_pool
from grim_redirect.redis_counters import RedisCounters
from tests.support import wait_for

from .conftest import running
from .redirect_support import await_clicks

CHROME = ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko)"
          " Chrome/131.0.0.0 Mobile Safari/537.36")
FBCLID = "IwZXh0bgNhZW0BMABhZGlkAasXMqM-_0uYzAR3" + "aB" * 40
FBP = "fb.1.1763800000000.1234567890.AQYBAAEA"


def token_of(page: str) -> str:
    return re.search(r'"token":"([0-9a-f]{32})"', page).group(1)


async def test_one_click_is_one_event_matching_the_request(redirect_settings, seed):
    pool, (bot,) = await seed.pool(1)
    query = (f"fbclid={FBCLID}&utm_source=facebook&utm_medium=paid&utm_campaign=Promo%20BF"
             "&utm_content=v%C3%ADdeo&utm_term=a%2Bb&grim=c1&src=ig&sck=s9&gclid=G")
    async with running(redirect_settings) as (_, client):
        response = await client.get(
            f"/go/{pool.slug}?{query}",
            headers={"user-agent": CHROME, "referer": "https://l.facebook.com/",
                     "cookie": f"_fbp={FBP}; other=1", "x-forwarded-for": "198.51.100.23"},
        )
    assert response.status_code == 200
    token = token_of(response.text)
    assert f"https://t.me/{bot.username}?start={token}" in response.text
    assert f'"eventId":"evt_{token}"' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.cookies["_fbc"].endswith("." + FBCLID)

    events = await await_clicks(redirect_settings.kafka_bootstrap,
                              redirect_settings.topic("click"), 1, tracking_token=token)
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "click" and event["producer"] == "redirect"
    assert event["pageview_event_id"] == f"evt_{token}"
    assert (event["pool_id"], event["pool_slug"]) == (pool.id, pool.slug)
    assert (event["bot_id"], event["bot_username"]) == (bot.id, bot.username)
    assert event["pixel_id"] == pool.pixel_id
    assert event["fbclid"] == FBCLID
    assert event["fbp"] == FBP
    assert re.fullmatch(r"fb\.1\.\d{13}\." + re.escape(FBCLID), event["fbc"])
    assert event["fbc"] == response.cookies["_fbc"]
    assert event["fbc_origin"] == "generated"
    assert (event["utm_source"], event["utm_medium"], event["utm_campaign"],
            event["utm_content"], event["utm_term"]) == (
        "facebook", "paid", "Promo BF", "vídeo", "a+b")
    assert event["campaign_params"] == {"grim": "c1", "src": "ig", "sck": "s9", "gclid": "G"}
    assert event["client_ip"] == "198.51.100.23"
    assert event["user_agent"] == CHROME
    assert event["referer"] == "https://l.facebook.com/"
    assert event["landing_url"] == f"https://go.example.com/go/{pool.slug}?{query}"
    assert event["is_crawler"] is False and event["crawler_name"] is None


async def test_fbc_cookie_wins_and_is_kept_verbatim(redirect_settings, seed):
    pool, _ = await seed.pool(1)
    fbc = "fb.1.1763700000000.IwAR-original.Ag"
    async with running(redirect_settings) as (_, client):
        response = await client.get(f"/go/{pool.slug}?fbclid=NEW",
                                    headers={"user-agent": CHROME, "cookie": f"_fbc={fbc}"})
    token = token_of(response.text)
    assert "_fbc" not in response.cookies
    (event,) = await await_clicks(redirect_settings.kafka_bootstrap,
                                redirect_settings.topic("click"), 1, tracking_token=token)
    assert (event["fbc"], event["fbc_origin"], event["fbclid"]) == (fbc, "cookie", "NEW")


async def test_200_parallel_clicks_give_exact_counters(redirect_settings, seed, redis_client):
    pool, (light, heavy) = await seed.pool(1, 3)
    async with running(redirect_settings) as (_, client):
        responses = await asyncio.gather(*(
            client.get(f"/go/{pool.slug}?utm_source=n{i}", headers={"user-agent": CHROME})
            for i in range(200)
        ))
        crawler = await client.get(f"/go/{pool.slug}",
                                   headers={"user-agent": "facebookexternalhit/1.1"})
    assert {r.status_code for r in responses} == {200}
    counters = RedisCounters(redis_client, redirect_settings)
    assert await counters.selections(pool.id) == {light.id: 50, heavy.id: 150}
    assert int(await redis_client.get(counters.sequence_key(pool.id))) == 200

    events = await await_clicks(redirect_settings.kafka_bootstrap,
                              redirect_settings.topic("click"), 201, pool_id=pool.id)
    people = [e for e in events if not e["is_crawler"]]
    assert len(people) == 200 and len({e["tracking_token"] for e in people}) == 200
    assert sorted(e["utm_source"] for e in people) == sorted(f"n{i}" for i in range(200))
    by_bot = {b: sum(e["bot_id"] == b for e in people) for b in (light.id, heavy.id)}
    assert by_bot == {light.id: 50, heavy.id: 150}

    # The crawler got the same page, is flagged, and moved no counter.
    assert crawler.status_code == 200 and "fbq('track', 'PageView'" in crawler.text
    (flagged,) = [e for e in events if e["is_crawler"]]
    assert flagged["crawler_name"] == "facebookexternalhit"


async def test_unknown_disabled_and_botless_pools_get_clear_pages(redirect_settings, seed):
    disabled, _ = await seed.pool(1, enabled=False)
    sick, _ = await seed.pool(1, healthy=False)
    empty, _ = await seed.pool()
    async with running(redirect_settings) as (_, client):
        unknown = await client.get("/go/no-such-pool")
        weird = await client.get("/go/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        paused = await client.get(f"/go/{disabled.slug}", headers={"user-agent": CHROME})
        unhealthy = await client.get(f"/go/{sick.slug}", headers={"user-agent": CHROME})
        botless = await client.get(f"/go/{empty.slug}", headers={"user-agent": CHROME})
        metrics = (await client.get("/metrics")).text
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
    assert unknown.status_code == 404 and "Link não encontrado" in unknown.text
    assert weird.status_code == 404 and "<script>alert" not in weird.text
    assert paused.status_code == 503 and "pausado" in paused.text
    assert unhealthy.status_code == 503 and botless.status_code == 503
    assert 'grim_redirect_requests_total{outcome="pool_disabled"}' in metrics
    assert 'grim_redirect_requests_total{outcome="no_bot"}' in metrics
    assert 'grim_redirect_requests_total{outcome="not_found"}' in metrics


async def test_pool_without_pixel_is_a_plain_302(redirect_settings, seed):
    pool, (bot,) = await seed.pool(1, pixel=False)
    async with running(redirect_settings) as (_, client):
        response = await client.get(f"/go/{pool.slug}?fbclid=F1", headers={"user-agent": CHROME})
    assert response.status_code == 302
    match = re.fullmatch(rf"https://t\.me/{bot.username}\?start=([0-9a-f]{{32}})",
                         response.headers["location"])
    assert match
    (event,) = await await_clicks(redirect_settings.kafka_bootstrap,
                                redirect_settings.topic("click"), 1, tracking_token=match.group(1))
    assert event["pixel_id"] is None and event["fbclid"] == "F1"


async def test_config_changes_are_visible_without_restart(redirect_settings, seed, pg_pool):
    pool, _ = await seed.pool(1)
    async with running(redirect_settings) as (_, client):
        first = await client.get(f"/go/{pool.slug}", headers={"user-agent": CHROME})
        assert first.status_code == 200
        await update_pool(pg_pool, pool.slug, enabled=False)

        async def paused() -> bool:
            r = await client.get(f"/go/{pool.slug}", headers={"user-agent": CHROME})
            return r.status_code == 503

        # The cache TTL is 30 s here: only the NOTIFY can make this pass in time.
        await wait_for(paused, timeout=10, message="pool pause visible")


async def test_xss_payload_in_params_is_inert(redirect_settings, seed):
    pool, _ = await seed.pool(1)
    payload = "</script><script>alert(1)</script>"
    async with running(redirect_settings) as (_, client):
        response = await client.get(f"/go/{pool.slug}",
                                    params={"utm_source": payload, "fbclid": payload, "x": payload},
                                    headers={"user-agent": CHROME})
    assert response.status_code == 200
    assert "alert(1)" not in response.text and response.text.count("<script>") == 1
    assert "_fbc" not in response.cookies  # not cookie-safe: not echoed in Set-Cookie
    (event,) = await await_clicks(redirect_settings.kafka_bootstrap,
                                redirect_settings.topic("click"), 1,
                                tracking_token=token_of(response.text))
    assert event["utm_source"] == payload and event["fbclid"] == payload
