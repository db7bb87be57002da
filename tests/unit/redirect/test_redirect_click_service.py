"""The /go use case with in-memory fakes (no I/O)."""

from __future__ import annotations

import pytest

from grim.config.pools import Pool, PoolBot
from grim_redirect import rotation
from grim_redirect.clicks import ClickRequest, ClickService
from grim_redirect.pool_cache import PoolUnavailable

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


class FakePools:
    def __init__(self, pools: dict[str, Pool], down: bool = False) -> None:
        self.pools, self.down = pools, down

    async def get(self, slug: str) -> Pool | None:
        if self.down:
            raise PoolUnavailable("db down")
        return self.pools.get(slug)


class FakeCounters:
    def __init__(self) -> None:
        self.seq = 0
        self.selected: list[int] = []

    async def choose(self, pool_id: int, candidates):
        self.seq += 1
        bot = rotation.choose(candidates, self.seq)
        self.selected.append(bot.bot_id)
        return bot


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.events: list = []
        self.fail = fail

    async def record(self, event) -> str:
        if self.fail:
            raise OSError("disk full")
        self.events.append(event)
        return "kafka"


def member(bot_id: int, weight: int = 1, **flags: bool) -> PoolBot:
    return PoolBot(bot_id=bot_id, username=f"b{bot_id}_bot", weight=weight,
                   enabled=flags.get("enabled", True), bot_enabled=flags.get("bot_enabled", True),
                   bot_healthy=flags.get("bot_healthy", True))


def pool(*bots: PoolBot, enabled: bool = True, pixel: str | None = "123") -> Pool:
    return Pool(id=9, slug="promo", name="", enabled=enabled, pixel_id=pixel, bots=bots)


def request(ua: str | None = CHROME, query: str = "", cookie: str | None = None) -> ClickRequest:
    return ClickRequest(slug="promo", raw_query=query, landing_url="https://x/go/promo?" + query,
                        cookie_header=cookie, user_agent=ua, referer=None, client_ip="192.0.2.1")


def service(p: Pool | None, **kw) -> tuple[ClickService, FakeCounters, FakeSink]:
    counters, sink = FakeCounters(), kw.pop("sink", FakeSink())
    pools = FakePools({"promo": p} if p else {}, **kw)
    return ClickService(pools=pools, counters=counters, sink=sink), counters, sink


async def test_bridge_page_and_event_for_a_visitor():
    svc, counters, sink = service(pool(member(1), member(2)))
    result = await svc.handle(request(query="fbclid=F1"))
    assert result.outcome == "bridge" and result.status == 200
    (event,) = sink.events
    assert event.pageview_event_id == f"evt_{event.tracking_token}"
    assert f"start={event.tracking_token}" in result.html
    assert counters.selected == [event.bot_id]
    assert result.cookies == {"_fbc": event.fbc}


async def test_crawler_gets_same_page_but_moves_no_counter():
    svc, counters, sink = service(pool(member(1)))
    person = await svc.handle(request())
    crawler = await svc.handle(request(ua="facebookexternalhit/1.1"))
    assert crawler.outcome == person.outcome == "bridge"
    strip = lambda html, ev: html.replace(ev.tracking_token, "T")  # noqa: E731
    assert strip(crawler.html, crawler.event) == strip(person.html, person.event)
    assert counters.seq == 1 and counters.selected == [1]
    assert sink.events[1].is_crawler and sink.events[1].crawler_name == "facebookexternalhit"


async def test_unusable_bots_are_skipped():
    svc, _, sink = service(pool(member(1, enabled=False), member(2, bot_healthy=False),
                                member(3, bot_enabled=False), member(4)))
    for _ in range(5):
        await svc.handle(request())
    assert {e.bot_id for e in sink.events} == {4}


@pytest.mark.parametrize("p,down,outcome,status", [
    (None, False, "not_found", 404),
    (pool(member(1), enabled=False), False, "pool_disabled", 503),
    (pool(member(1, enabled=False)), False, "no_bot", 503),
    (pool(), False, "no_bot", 503),
    (pool(member(1)), True, "unavailable", 503),
])
async def test_no_click_outcomes(p, down, outcome, status):
    svc, counters, sink = service(p, down=down)
    result = await svc.handle(request())
    assert (result.outcome, result.status) == (outcome, status)
    assert result.html and sink.events == [] and counters.seq == 0


async def test_pool_without_pixel_redirects():
    svc, _, sink = service(pool(member(7), pixel=None))
    result = await svc.handle(request())
    assert result.status == 302
    assert result.location == f"https://t.me/b7_bot?start={sink.events[0].tracking_token}"


async def test_visitor_still_reaches_the_bot_when_nothing_is_durable():
    svc, _, _ = service(pool(member(1)), sink=FakeSink(fail=True))
    result = await svc.handle(request())
    assert result.outcome == "bridge" and "t.me/b1_bot" in result.html


async def test_impossible_slug_is_not_looked_up():
    class Exploding(FakePools):
        async def get(self, slug: str):
            raise AssertionError("looked up")

    svc = ClickService(pools=Exploding({}), counters=FakeCounters(), sink=FakeSink())
    result = await svc.handle(ClickRequest(slug="<script>", raw_query="", landing_url="x",
                                           cookie_header=None, user_agent=None, referer=None,
                                           client_ip=None))
    assert (result.outcome, result.status) == ("not_found", 404)
