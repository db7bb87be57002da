"""Pure extraction of the click identifiers from a request (no I/O).

fbclid, `_fbp` and `_fbc` are kept byte-for-byte: the query string gets the one
normal URL decoding and nothing else (no strip, no case change, no truncation);
cookies are split from the raw Cookie header without unquoting.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl

from grim_schemas.events import FbcOrigin

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Named campaign params first; other unknown params are kept too, within bounds,
# because sellers invent their own (the legacy system lost them).
CAMPAIGN_PARAMS = ("grim", "src", "sck")
MAX_EXTRA_PARAMS = 20
MAX_PARAM_NAME = 64
MAX_PARAM_VALUE = 1024

# Meta's cookie format: fb.<subdomain index>.<creation ms>.<value>[.<appendix>];
# ParamBuilder appends the fifth part, both shapes are valid.
_FB_COOKIE = re.compile(r"^fb\.\d+\.\d+\.[^.\s;]+(\.[^.\s;]+)?$")


@dataclass(frozen=True)
class CapturedParams:
    fbclid: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    campaign_params: dict[str, str] = field(default_factory=dict)


def parse_query(raw_query: str) -> CapturedParams:
    """First value of each parameter wins; blank values are kept as given."""
    seen: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        seen.setdefault(name, value)
    utm = {k: seen[k] for k in UTM_FIELDS if k in seen}
    named = {k: seen[k] for k in CAMPAIGN_PARAMS if k in seen}
    extras: dict[str, str] = {}
    for name, value in seen.items():
        if name == "fbclid" or name in utm or name in named:
            continue
        if len(extras) >= MAX_EXTRA_PARAMS:
            break
        if len(name) <= MAX_PARAM_NAME and len(value) <= MAX_PARAM_VALUE:
            extras[name] = value
    return CapturedParams(fbclid=seen.get("fbclid"), utm=utm, campaign_params=named | extras)


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """Cookies exactly as sent (first occurrence wins, no unquoting or decoding)."""
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies.setdefault(name.strip(), value.strip())
    return cookies


def valid_fb_cookie(value: str | None) -> bool:
    return bool(value) and _FB_COOKIE.match(value or "") is not None


@dataclass(frozen=True)
class Fbc:
    value: str | None
    origin: FbcOrigin


def resolve_fbc(fbc_cookie: str | None, fbclid: str | None, now_ms: int) -> Fbc:
    """The browser's `_fbc` when valid, else `fb.1.<ms>.<fbclid>` (Meta's format), else none."""
    if valid_fb_cookie(fbc_cookie):
        return Fbc(fbc_cookie, "cookie")
    if fbclid:
        return Fbc(f"fb.1.{now_ms}.{fbclid}", "generated")
    return Fbc(None, "none")


def resolve_fbp(fbp_cookie: str | None) -> str | None:
    return fbp_cookie if valid_fb_cookie(fbp_cookie) else None


_COOKIE_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def cookie_safe(value: str) -> bool:
    """Whether a value can go into Set-Cookie without quoting (fbclids normally can)."""
    return _COOKIE_SAFE.match(value) is not None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)  # peers (proxies, load balancers) repeat on every request
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Iterable[Network]
) -> str | None:
    """The visitor's address: X-Forwarded-For is believed only hop by hop from trusted proxies.

    Walk from the peer towards the visitor; the first address that is not a
    trusted proxy is the client. A garbled hop stops the walk at the last
    trustworthy address, so a visitor cannot forge its IP by sending the header.
    """
    networks = tuple(trusted)
    current = _parse_ip(peer) if peer else None
    if current is None:
        return peer
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not any(current.version == net.version and current in net for net in networks):
            break
        parsed = _parse_ip(hop)
        if parsed is None:
            break
        current = parsed
    return str(current)
