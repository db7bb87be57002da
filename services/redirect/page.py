"""The bridge page: Pixel PageView, cookie beacon, then Telegram.

Every value is escaped for the context it lands in: JSON with `<`, `>`, `&`
and the JS line separators as \\u escapes inside the script (so no value can
close the <script> element), HTML-escaped in attributes, percent-encoded in
the t.me URL.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template
from urllib.parse import quote

import orjson

_JS_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    ord("\u2028"): "\\u2028",
    ord("\u2029"): "\\u2029",
}


def js_literal(value: object) -> str:
    """A JavaScript literal of `value`, safe inside an inline <script>."""
    return orjson.dumps(value).decode().translate(_JS_ESCAPES)


def telegram_url(bot_username: str, token: str) -> str:
    return f"https://t.me/{quote(bot_username, safe='')}?start={quote(token, safe='')}"


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("bridge.html").read_text("utf-8")
    return Template(text)


def render_bridge(
    *, pixel_id: str, event_id: str, token: str, telegram: str, beacon_url: str, delay_ms: int
) -> str:
    data = {
        "pixelId": pixel_id,
        "eventId": event_id,
        "token": token,
        "telegramUrl": telegram,
        "beaconUrl": beacon_url,
        "delayMs": delay_ms,
    }
    return _template().substitute(
        data_js=js_literal(data), telegram_url_html=html.escape(telegram, quote=True)
    )


def render_message(title: str, message: str) -> str:
    """A plain page for errors (unknown link, paused pool): same for people and crawlers."""
    return (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><title>'
        f"{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p></main></body></html>"
    )
