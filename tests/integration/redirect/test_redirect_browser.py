"""The bridge page in a real headless Chromium (Debian's), driven by Playwright.

Meta's fbevents.js is replaced by a local stub that records every fbq call and
sets `_fbp` like the real one; t.me is intercepted. Proves the PageView carries
eventID evt_<token>, the cookies are beaconed, the browser lands on the bot, and
a script-looking UTM value never executes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket

import pytest
import uvicorn

from grim_redirect.app import create_app
from tests.support import wait_for

from .redirect_support import await_clicks, clicks_for
from .test_redirect_clicks import CHROME

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STUB_FBP = "fb.1.1763800000000.4242424242"
STUB_FBEVENTS = """
(function () {
  function handle(args) {
    args = Array.prototype.slice.call(args);
    window.__grimRecord(JSON.stringify(args));
    if (args[0] === 'init' && document.cookie.indexOf('_fbp=') < 0) {
      document.cookie = '_fbp=STUB_FBP; path=/; max-age=7776000';
    }
  }
  var f = window.fbq;
  f.callMethod = function () { handle(arguments); };
  var queued = f.queue || [];
  f.queue = [];
  queued.forEach(handle);
})();
""".replace("STUB_FBP", STUB_FBP)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="apt-get install chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_bridge_page_in_chromium(redirect_settings, seed):
    from playwright.async_api import async_playwright

    pool, (bot,) = await seed.pool(1)
    settings = redirect_settings.model_copy(update={"redirect_bridge_delay_ms": 1200})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    fbq_calls: list[list] = []
    beacons: list[str] = []
    dialogs: list[str] = []
    xss = "</script><script>alert(1)</script>"
    try:
        await wait_for(lambda: server.started, timeout=20, message="uvicorn started")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = await browser.new_context(user_agent=CHROME)
            await context.expose_binding("__grimRecord",
                                         lambda _source, raw: fbq_calls.append(json.loads(raw)))

            async def fbevents(route):
                await route.fulfill(status=200, content_type="application/javascript",
                                    body=STUB_FBEVENTS)

            async def telegram(route):
                await route.fulfill(status=200, content_type="text/html", body="<p>telegram</p>")

            async def elsewhere(route):
                await route.abort()  # nothing may leave this machine

            await context.route(re.compile(r"^https?://(?!127\.0\.0\.1|connect\.facebook\.net"
                                           r"|t\.me).*"), elsewhere)
            await context.route("https://connect.facebook.net/**", fbevents)
            await context.route("https://t.me/**", telegram)
            page = await context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message),
                                         asyncio.ensure_future(d.dismiss())))
            page.on("request", lambda r: beacons.append(r.post_data or "")
                    if r.url.endswith("/api/tracking/cookies") else None)

            url = f"http://127.0.0.1:{port}/go/{pool.slug}"
            await page.goto(url + "?fbclid=IwAR-Browser_1&utm_source=" + xss.replace("<", "%3C"),
                            wait_until="commit")
            await page.wait_for_url(re.compile(r"^https://t\.me/"), timeout=20000)
            landed = page.url
            await browser.close()

        match = re.fullmatch(rf"https://t\.me/{bot.username}\?start=([0-9a-f]{{32}})", landed)
        assert match, landed
        token = match.group(1)
        assert ["init", pool.pixel_id] in fbq_calls
        assert ["track", "PageView", {}, {"eventID": f"evt_{token}"}] in fbq_calls
        assert dialogs == []

        await wait_for(lambda: beacons, timeout=10, message="cookie beacon sent")
        report = json.loads(beacons[0])
        assert report["tracking_token"] == token and report["fbp"] == STUB_FBP
        assert report["fbc"].endswith(".IwAR-Browser_1")

        events = await wait_for(
            lambda: clicks_for(settings.kafka_bootstrap, settings.topic("click-cookies"),
                               tracking_token=token),
            timeout=20, message="click-cookies event")
        assert len(events) == 1 and events[0]["fbp"] == STUB_FBP
        (click,) = await await_clicks(settings.kafka_bootstrap, settings.topic("click"), 1,
                                      tracking_token=token)
        assert click["utm_source"] == xss and click["is_crawler"] is False
        assert events[0]["fbc"] == click["fbc"]  # the browser kept the server's _fbc
    finally:
        server.should_exit = True
        await serving
