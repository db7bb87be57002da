"""ConversionRequested + pixel config -> one CAPI event, or the reason it cannot be sent (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from grim_schemas.events import ConversionRequested

from .hashing import build_user_data

MAX_AGE = timedelta(days=7)
# Leave room for the request's own travel so an event at the edge is not refused by Meta.
AGE_MARGIN = timedelta(minutes=5)
PRIORITY = {"Purchase": 0, "InitiateCheckout": 1, "ViewContent": 2, "PageView": 3}

# When the pixel says "website" but the event has no browser context (organic
# buyers, events without the click's user agent), Meta would refuse it; these
# events happened at the gateway or in the Telegram chat, which is what we say.
FALLBACK_SOURCE = {"Purchase": "system_generated"}
FALLBACK_DEFAULT = "chat"


@dataclass(frozen=True)
class Refusal:
    kind: str  # bounded label: too_old, future, no_timezone, missing_value
    reason: str


class Built(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per event, and a frozen
    # dataclass's __init__ (object.__setattr__ per field) costs several times more.
    event: dict[str, Any]
    clamped: bool = False
    fallback_source: bool = False


@dataclass(frozen=True)
class TimeWindow:
    """The event_time bounds of one pass, as POSIX seconds, computed once per pass.

    Comparing floats instead of aware datetimes matters: a decoded event_time
    carries pydantic's tzinfo, so each datetime comparison calls utcoffset() on
    both sides. Timestamps of whole microseconds compare exactly like the instants.
    """

    now: float
    oldest: float
    skew_limit: float
    latest: float

    @classmethod
    def at(cls, now: datetime, *, future_skew: timedelta = timedelta(seconds=60),
           max_future: timedelta = timedelta(hours=1)) -> TimeWindow:
        return cls(now.timestamp(), (now - MAX_AGE + AGE_MARGIN).timestamp(),
                   (now + future_skew).timestamp(), (now + max_future).timestamp())


def check_time(event_time: datetime, window: TimeWindow) -> tuple[int | Refusal, bool]:
    """event_time in seconds, clamped to now when slightly in the future; or a refusal."""
    if event_time.tzinfo is None:
        # The contract does not force an offset on event_time; guessing one would shift
        # the event by hours, so the producer has to fix it.
        return Refusal("no_timezone", "event_time has no UTC offset"), False
    seconds = event_time.timestamp()
    if seconds < window.oldest:
        return Refusal("too_old", "too old: event_time is more than 7 days ago"), False
    if seconds > window.latest:
        return Refusal("future", f"event_time {event_time.isoformat()} is in the future"), False
    if seconds <= window.now:
        return int(seconds), False
    # Any future instant is sent as now; only a jump beyond the skew counts as clamped.
    return int(window.now), seconds > window.skew_limit


def action_source_for(conv: ConversionRequested, pixel_source: str, user: dict[str, str]) -> \
        tuple[str, bool]:
    """PageView comes from the bridge page: always website. Others follow the pixel's setting."""
    source = "website" if conv.event_name == "PageView" else pixel_source
    if source == "website" and not (user.get("client_user_agent") and conv.event_source_url):
        return FALLBACK_SOURCE.get(conv.event_name, FALLBACK_DEFAULT), True
    return source, False


def build_event(conv: ConversionRequested, *, pixel_source: str, window: TimeWindow) -> \
        Built | Refusal:
    seconds, clamped = check_time(conv.event_time, window)
    if isinstance(seconds, Refusal):
        return seconds
    custom = {k: v for k, v in conv.custom_data.items() if v is not None}
    if conv.event_name == "Purchase" and (
        not isinstance(custom.get("value"), (int, float)) or not custom.get("currency")
    ):
        return Refusal("missing_value", "Purchase without value and currency")
    user = build_user_data(conv.user_data)
    source, fallback = action_source_for(conv, pixel_source, user)
    event: dict[str, Any] = {
        "event_name": conv.event_name,
        "event_time": seconds,
        "event_id": conv.event_id,
        "action_source": source,
        "user_data": user,
    }
    if conv.event_source_url:
        event["event_source_url"] = conv.event_source_url
    if custom:
        event["custom_data"] = custom
    return Built(event, clamped, fallback)


def order_for_sending(items: list[Any], name_of) -> list[Any]:  # type: ignore[no-untyped-def]
    """Purchase first, then the rest by funnel depth; stable within a name (arrival order)."""
    return sorted(items, key=lambda item: PRIORITY.get(name_of(item), 9))


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
