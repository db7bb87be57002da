"""Reading Telegram updates: what kind each one is and what it carries. Pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from grim_schemas.base import TOKEN_PATTERN

# Every optional field of Bot API `Update`; anything else is counted as "unknown".
UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post",
    "business_connection", "business_message", "edited_business_message",
    "deleted_business_messages", "message_reaction", "message_reaction_count",
    "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
    "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member",
    "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
)
# What the funnel reacts to; the webhook asks Telegram only for these.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")

_START = re.compile(r"^/start(?:@[A-Za-z0-9_]{1,64})?(?:[ \t\n]+(.*))?$", re.DOTALL)
_TOKEN = re.compile(TOKEN_PATTERN)
PIX_CALLBACK_PREFIX = "pix:"

Kind = Literal["start", "callback", "message", "blocked", "unblocked", "ignored"]


@dataclass(frozen=True)
class StartCommand:
    payload: str | None
    tracking_token: str | None


@dataclass(frozen=True)
class Incoming:
    kind: Kind
    update_type: str
    chat_id: int | None = None
    user_id: int | None = None
    username: str | None = None
    first_name: str | None = None
    language_code: str | None = None
    start: StartCommand | None = None
    callback_id: str | None = None
    callback_data: str | None = None
    callback_message_id: int | None = None


def parse_start(text: str | None) -> StartCommand | None:
    """`/start [payload]` -> the payload verbatim and the token when it is 32 lowercase hex."""
    if not text:
        return None
    match = _START.match(text)
    if not match:
        return None
    payload = (match.group(1) or "").strip() or None
    token = payload if payload is not None and _TOKEN.match(payload) else None
    return StartCommand(payload=payload, tracking_token=token)


def update_type(update: dict[str, Any]) -> str:
    for name in UPDATE_TYPES:
        if name in update:
            return name
    return "unknown"


def _is_id(value: Any) -> bool:
    """Telegram ids are signed 64-bit; anything else would not fit our bigint columns."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _user_fields(user: Any) -> dict[str, Any]:
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        return {}
    return {
        "user_id": user["id"],
        "username": user.get("username"),
        "first_name": user.get("first_name"),
        "language_code": user.get("language_code"),
    }


def _chat_id(container: Any) -> int | None:
    chat = container.get("chat") if isinstance(container, dict) else None
    if isinstance(chat, dict) and _is_id(chat.get("id")):
        return chat["id"]
    return None


def classify(update: dict[str, Any]) -> Incoming:
    """Decide what the funnel does with an update; unusable shapes become "ignored"."""
    kind = update_type(update)
    body = update.get(kind)
    if not isinstance(body, dict):
        return Incoming("ignored", kind)
    if kind == "message":
        chat_id = _chat_id(body)
        fields = _user_fields(body.get("from"))
        if chat_id is None or not fields:
            return Incoming("ignored", kind, chat_id=chat_id)
        text = body.get("text") if isinstance(body.get("text"), str) else None
        start = parse_start(text) if _chat_type(body) == "private" else None
        if start is not None:
            return Incoming("start", kind, chat_id=chat_id, start=start, **fields)
        return Incoming("message", kind, chat_id=chat_id, **fields)
    if kind == "callback_query":
        fields = _user_fields(body.get("from"))
        message = body.get("message")
        chat_id = _chat_id(message) if isinstance(message, dict) else None
        if not fields or not isinstance(body.get("id"), str):
            return Incoming("ignored", kind)
        return Incoming(
            "callback", kind, chat_id=chat_id if chat_id is not None else fields["user_id"],
            callback_id=body["id"],
            callback_data=body.get("data") if isinstance(body.get("data"), str) else None,
            callback_message_id=message.get("message_id")
            if isinstance(message, dict) and _is_id(message.get("message_id")) else None,
            **fields,
        )
    if kind == "my_chat_member" and _chat_type(body) == "private":
        fields = _user_fields(body.get("from"))
        status = (body.get("new_chat_member") or {}).get("status")
        if fields and status in ("kicked", "member"):
            return Incoming("blocked" if status == "kicked" else "unblocked", kind,
                            chat_id=_chat_id(body), **fields)
    return Incoming("ignored", kind, chat_id=_chat_id(body))


def _chat_type(body: dict[str, Any]) -> str | None:
    chat = body.get("chat")
    return chat.get("type") if isinstance(chat, dict) else None


def pix_product(callback_data: str | None) -> int | None:
    """The product of a "Generate PIX" button (`pix:<product_id>`), or None."""
    if not callback_data or not callback_data.startswith(PIX_CALLBACK_PREFIX):
        return None
    rest = callback_data[len(PIX_CALLBACK_PREFIX):]
    return int(rest) if rest.isdigit() and len(rest) <= 18 else None


def chat_of(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, for per-chat ordering (None: no chat)."""
    return classify(update).chat_id
