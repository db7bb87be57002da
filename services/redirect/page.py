"""The bridge page: Pixel PageView, cookie beacon, then Telegram.

Every value is escaped for the context it lands in: JSON with `<`, `>`, `&`
and the JS line separators as \\u escapes inside the script (so no value can
close the <script> element), HTML-escaped in attributes, percent-encoded in
the t.me URL.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from urllib.parse import quote

import orjson

_JS_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    ord("\u2028"): "\\u2028",
    ord("\u2029"): "\\u2029",
}


_PLACEHOLDER = re.compile(r"\$([a-z_]+)")


def js_literal(value: object) -> str:
    """A JavaScript literal of `value`, safe inside an inline <script>."""
    return orjson.dumps(value).decode().translate(_JS_ESCAPES)


def telegram_url(bot_username: str, token: str) -> str:
    return f"https://t.me/{quote(bot_username, safe='')}?start={quote(token, safe='')}"


@cache
def _template() -> tuple[str, ...]:
    """bridge.html split around its placeholders: literal, name, literal, name, ..., literal."""
    text = resources.files(__package__).joinpath("bridge.html").read_text("utf-8")
    parts = tuple(_PLACEHOLDER.split(text))
    if set(parts[1::2]) != {"data_js", "telegram_url_html"}:
        raise RuntimeError(f"bridge.html placeholders are {sorted(set(parts[1::2]))}")
    return parts


def render_bridge(
    *, pixel_id: str, event_id: str, token: str, telegram: str, beacon_url: str, delay_ms: int
) -> str:
    values = {
        "data_js": js_literal({
            "pixelId": pixel_id,
            "eventId": event_id,
            "token": token,
            "telegramUrl": telegram,
            "beaconUrl": beacon_url,
            "delayMs": delay_ms,
        }),
        "telegram_url_html": html.escape(telegram, quote=True),
    }
    parts = _template()
    # Joining pre-split parts: string.Template's regex substitution per page cost more.
    return "".join(values[p] if i % 2 else p for i, p in enumerate(parts))


def render_message(title: str, message: str) -> str:
    """A plain page for errors (unknown link, paused pool): same for people and crawlers."""
    return (
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><title>'
        f"{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p></main></body></html>"
    )
