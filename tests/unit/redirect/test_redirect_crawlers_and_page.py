import json
import re

import pytest

from grim_redirect.crawlers import NAMES, detect
from grim_redirect.page import js_literal, render_bridge, render_message, telegram_url

CHROME = ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko)"
          " Chrome/131.0.0.0 Mobile Safari/537.36")
INSTAGRAM = CHROME + " Instagram 361.0.0.35.82 Android"
FB_IAB = CHROME + " [FB_IAB/FB4A;FBAV/491.0.0.51.109;]"


@pytest.mark.parametrize("ua,name", [
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     "facebookexternalhit"),
    ("TelegramBot (like TwitterBot)", "telegrambot"),
    ("Twitterbot/1.0", "twitterbot"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "slackbot"),
    ("WhatsApp/2.23.20.0 A", "whatsapp"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
     "headless"),
    ("curl/8.5.0", "http-library"),
    ("", "no-user-agent"),
    (None, "no-user-agent"),
])
def test_crawlers_are_named(ua, name):
    assert detect(ua) == name
    assert name in NAMES


@pytest.mark.parametrize("ua", [CHROME, INSTAGRAM, FB_IAB,
                                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"
                                " AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"])
def test_people_are_not_crawlers(ua):
    assert detect(ua) is None


def test_js_literal_cannot_close_the_script():
    evil = "</script><script>alert(1)</script>\u2028&"
    text = js_literal({"v": evil})
    assert "</script" not in text and "<" not in text and "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == {"v": evil}


def test_bridge_page_has_pageview_with_event_id_beacon_and_link():
    token = "ab" * 16
    page = render_bridge(pixel_id="1234567890", event_id=f"evt_{token}", token=token,
                         telegram=telegram_url("shop_bot", token),
                         beacon_url="/api/tracking/cookies", delay_ms=500)
    assert "fbq('track', 'PageView', {}, {eventID: GRIM.eventId});" in page
    data = json.loads(re.search(r"var GRIM = (\{.*?\});", page).group(1))
    assert data == {"pixelId": "1234567890", "eventId": f"evt_{token}", "token": token,
                    "telegramUrl": f"https://t.me/shop_bot?start={token}",
                    "beaconUrl": "/api/tracking/cookies", "delayMs": 500}
    assert f'href="https://t.me/shop_bot?start={token}"' in page
    assert "sendBeacon" in page


def test_values_are_escaped_in_every_context():
    evil = '"><script>alert(1)</script>'
    page = render_bridge(pixel_id=evil, event_id=evil, token=evil,
                         telegram=telegram_url(evil, evil), beacon_url="/b", delay_ms=1)
    assert "<script>alert(1)" not in page
    assert page.count("<script>") == 1  # only ours
    assert telegram_url('a"b', "x y") == "https://t.me/a%22b?start=x%20y"
    assert "<b>" not in render_message("<b>", "<i>x</i>")
