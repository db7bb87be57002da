"""Crawler and link-preview detection from the User-Agent.

Crawlers get exactly the same page as people (no cloaking, see DESIGN.md rule
9); this only flags the click so it is not counted or attributed. Matching is
on the lower-cased User-Agent with plain substring tests, behind one combined
pattern that rules out ordinary browsers in a single scan (every /go request
pays for this; a regex per pattern cost ~10x more).
"""

from __future__ import annotations

import re

# (name reported in the event and the metric label, lower-case substrings).
# Order matters: the first match names the crawler.
KNOWN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("facebookexternalhit", ("facebookexternalhit",)),
    ("facebookcatalog", ("facebookcatalog",)),
    ("facebot", ("facebot",)),
    ("meta-externalagent", ("meta-externalagent", "meta-externalfetcher")),
    ("telegrambot", ("telegrambot",)),
    ("twitterbot", ("twitterbot",)),
    ("slackbot", ("slackbot", "slack-imgproxy")),
    ("whatsapp", ("whatsapp",)),
    ("discordbot", ("discordbot",)),
    ("linkedinbot", ("linkedinbot",)),
    ("skypeuripreview", ("skypeuripreview",)),
    ("pinterestbot", ("pinterestbot", "pinterest/")),
    ("googlebot", ("googlebot", "google-inspectiontool", "adsbot-google",
                   "mediapartners-google")),
    ("bingbot", ("bingbot", "bingpreview")),
    ("applebot", ("applebot",)),
    ("yandexbot", ("yandexbot", "yandeximages")),
    ("headless", ("headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium",
                  "electron/")),
)
HTTP_LIBRARIES = ("curl", "wget", "python-requests", "python-httpx", "python-urllib", "aiohttp",
                  "go-http-client", "okhttp", "java/", "libwww-perl", "axios", "node-fetch",
                  "scrapy")
_GENERIC = re.compile(r"bot\b|crawler|spider|preview")
_ANY_KNOWN = re.compile("|".join(re.escape(n) for _, needles in KNOWN for n in needles))
NAMES = tuple(name for name, _ in KNOWN) + ("http-library", "generic-bot", "no-user-agent")


def detect(user_agent: str | None) -> str | None:
    """The crawler's name, or None for what looks like a person's browser."""
    if not user_agent or not user_agent.strip():
        return "no-user-agent"
    ua = user_agent.lower()
    # One C-level scan clears nearly every visitor; the ordered loop names the rest.
    if _ANY_KNOWN.search(ua):
        for name, needles in KNOWN:
            if any(needle in ua for needle in needles):
                return name
    if ua.startswith(HTTP_LIBRARIES):
        return "http-library"
    if _GENERIC.search(ua):
        return "generic-bot"
    return None
