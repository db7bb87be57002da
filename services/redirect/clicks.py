"""The /go use case: resolve the pool, choose a bot, capture the click, make it durable."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from grim.config.pools import Pool
from grim_schemas import ClickRecorded
from grim_schemas.base import new_event_id

from . import capture, crawlers, rotation
from .metrics import CLICKS, CRAWLER_HITS, SELECTIONS
from .page import render_bridge, render_message, telegram_url
from .pool_cache import PoolUnavailable

log = logging.getLogger(__name__)

Outcome = Literal["bridge", "redirect", "not_found", "pool_disabled", "no_bot", "unavailable"]
PRODUCER = "redirect"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # config.pools' CHECK
FBC_COOKIE_AGE = 90 * 24 * 3600  # what Meta's Pixel and ParamBuilder use


@dataclass(frozen=True)
class ClickRequest:
    slug: str
    raw_query: str
    landing_url: str
    cookie_header: str | None
    user_agent: str | None
    referer: str | None
    client_ip: str | None


@dataclass(frozen=True)
class ClickResult:
    outcome: Outcome
    status: int
    html: str | None = None
    location: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    event: ClickRecorded | None = None


class Pools(Protocol):
    async def get(self, slug: str) -> Pool | None: ...


class Counters(Protocol):
    async def choose(
        self, pool_id: int, candidates: Sequence[rotation.Candidate]
    ) -> rotation.Candidate: ...


class Sink(Protocol):
    async def record(self, event: ClickRecorded) -> str: ...


@dataclass
class ClickService:
    pools: Pools
    counters: Counters
    sink: Sink
    beacon_url: str = "/api/tracking/cookies"
    bridge_delay_ms: int = 800
    _members: dict[int, tuple[Pool, tuple[rotation.Candidate, ...]]] = field(
        default_factory=dict, repr=False)

    async def handle(self, req: ClickRequest) -> ClickResult:
        try:
            # A slug the config would refuse cannot exist: no lookup, nothing cached.
            pool = await self.pools.get(req.slug) if SLUG.match(req.slug) else None
        except PoolUnavailable:
            return _message("unavailable", 503, "Link temporariamente indisponível",
                            "Tente novamente em alguns instantes.")
        if pool is None:
            return _message("not_found", 404, "Link não encontrado",
                            "Este link não existe. Confira o endereço do anúncio.")
        if not pool.enabled:
            return _message("pool_disabled", 503, "Link pausado",
                            "Este link está pausado no momento. Tente novamente mais tarde.")
        candidates = self._candidates(pool)
        if not candidates:
            return _message("no_bot", 503, "Link temporariamente indisponível",
                            "Nenhum atendimento disponível agora. Tente novamente mais tarde.")

        crawler = crawlers.detect(req.user_agent)
        if crawler is None:
            bot = await self.counters.choose(pool.id, candidates)
            SELECTIONS.labels(str(pool.id), str(bot.bot_id)).inc()
        else:
            # Same page, but a crawler must not move the rotation or the counters.
            bot = rotation.choose(candidates, random.randrange(1 << 30))
            CRAWLER_HITS.labels(crawler).inc()

        event = build_click(req, pool, bot, crawler, now_ms=int(time.time() * 1000))
        try:
            path = await self.sink.record(event)
        except OSError:
            # Kafka, PostgreSQL and the local disk all failed: the click is lost, but the
            # visitor (who paid for the ad) still reaches the bot. Logged with the full event.
            log.exception("click lost, no durable store available: %s", event.model_dump_json())
            path = "lost"
        CLICKS.labels(path, "crawler" if crawler else "visitor").inc()

        telegram = telegram_url(bot.username, event.tracking_token)
        cookies = {}
        if event.fbc_origin == "generated" and event.fbc and capture.cookie_safe(event.fbc):
            # The Pixel keeps an existing _fbc for the same fbclid, so browser and server agree.
            cookies["_fbc"] = event.fbc
        if pool.pixel_id is None:
            return ClickResult("redirect", 302, location=telegram, cookies=cookies, event=event)
        page = render_bridge(
            pixel_id=pool.pixel_id, event_id=event.pageview_event_id, token=event.tracking_token,
            telegram=telegram, beacon_url=self.beacon_url, delay_ms=self.bridge_delay_ms,
        )
        return ClickResult("bridge", 200, html=page, cookies=cookies, event=event)


    def _candidates(self, pool: Pool) -> tuple[rotation.Candidate, ...]:
        """The pool's rotation members, computed once per cached Pool object."""
        seen = self._members.get(pool.id)
        if seen is not None and seen[0] is pool:
            return seen[1]
        members = tuple(rotation.Candidate(b.bot_id, b.username, b.weight)
                        for b in pool.usable_bots)
        self._members[pool.id] = (pool, members)
        return members


def build_click(
    req: ClickRequest, pool: Pool, bot: rotation.Candidate, crawler: str | None, *, now_ms: int
) -> ClickRecorded:
    """The click fact; identifiers verbatim (see capture.py)."""
    params = capture.parse_query(req.raw_query)
    cookies = capture.parse_cookie_header(req.cookie_header)
    fbc = capture.resolve_fbc(cookies.get("_fbc"), params.fbclid, now_ms)
    token = new_event_id()  # uuid4 hex: 32 chars, fits Telegram's start payload
    return ClickRecorded(
        producer=PRODUCER,
        tracking_token=token,
        pageview_event_id=f"evt_{token}",
        pool_id=pool.id,
        pool_slug=pool.slug,
        bot_id=bot.bot_id,
        bot_username=bot.username,
        pixel_id=pool.pixel_id,
        fbclid=params.fbclid,
        fbp=capture.resolve_fbp(cookies.get("_fbp")),
        fbc=fbc.value,
        fbc_origin=fbc.origin,
        **params.utm,
        campaign_params=params.campaign_params,
        client_ip=req.client_ip,
        user_agent=req.user_agent,
        referer=req.referer,
        landing_url=req.landing_url,
        is_crawler=crawler is not None,
        crawler_name=crawler,
    )


def _message(outcome: Outcome, status: int, title: str, text: str) -> ClickResult:
    return ClickResult(outcome, status, html=render_message(title, text))
