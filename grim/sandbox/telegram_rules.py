"""What the Telegram Bot API refuses, as checks the fake Telegram runs on every call.

Descriptions match the real API's `description` strings where they are known.
"""

from __future__ import annotations

import html
import itertools
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{30,64}$")
TEXT_LIMIT, CAPTION_LIMIT, CALLBACK_LIMIT, COPY_TEXT_LIMIT, ANSWER_LIMIT = 4096, 1024, 64, 256, 200
PARSE_MODES = {"HTML", "Markdown", "MarkdownV2"}
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
             "a", "code", "pre", "blockquote", "tg-emoji"}
UPDATE_TYPES = {
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages",
    "message_reaction", "message_reaction_count", "inline_query", "chosen_inline_result",
    "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll",
    "poll_answer", "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
    "removed_chat_boost",
}
BUTTON_ACTIONS = {"url", "callback_data", "web_app", "login_url", "switch_inline_query",
                  "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                  "copy_text", "callback_game", "pay"}
WEBHOOK_PORTS = {80, 88, 443, 8443}
SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class BadRequest(Exception):
    def __init__(self, description: str, code: int = 400, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.retry_after = retry_after


def user_length(text: str, parse_mode: str | None) -> int:
    """Length of what the user sees: entities are not counted."""
    if parse_mode == "HTML":
        for tag in re.findall(r"</?([a-zA-Z-]+)[^>]*>", text):
            if tag.lower() not in HTML_TAGS:
                raise BadRequest(f"Bad Request: can't parse entities: Unsupported start tag "
                                 f"\"{tag}\"")
        if re.search(r"<(?!/?[a-zA-Z-]+[^>]*>)", text):
            raise BadRequest("Bad Request: can't parse entities: Unexpected end of name token")
        return len(html.unescape(re.sub(r"<[^>]+>", "", text)))
    return len(text)


def int_param(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise BadRequest(f"Bad Request: {name} is empty")
        return None
    if isinstance(value, bool):
        raise BadRequest(f"Bad Request: invalid {name} specified")
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value):
        value = int(value)
    if not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise BadRequest(f"Bad Request: invalid {name} specified")
    return value


def chat_id_param(params: dict[str, Any]) -> int | str:
    value = params.get("chat_id")
    if isinstance(value, str) and value.startswith("@") and re.fullmatch(r"@\w{4,32}", value):
        return value
    chat = int_param(params, "chat_id", required=True)
    assert chat is not None
    if chat == 0:
        raise BadRequest("Bad Request: chat not found")
    return chat


def json_param(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(f"Bad Request: can't parse {name} JSON object") from None
    return value


def check_markup(params: dict[str, Any]) -> None:
    markup = json_param(params, "reply_markup")
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise BadRequest("Bad Request: object expected as reply markup")
    if "inline_keyboard" not in markup:
        if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise BadRequest("Bad Request: object expected as reply markup")
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise BadRequest("Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup "
                         "must be an Array of Arrays")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str) \
                or not button["text"]:
            raise BadRequest("Bad Request: can't parse inline keyboard button: Text buttons "
                             "are unallowed in the inline keyboard")
        actions = BUTTON_ACTIONS & button.keys()
        if len(actions) != 1:
            raise BadRequest("Bad Request: can't parse inline keyboard button: exactly one "
                             "optional field must be used")
        data = button.get("callback_data")
        if "callback_data" in button and (
                not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_LIMIT):
            raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
        if "copy_text" in button:
            copy = button["copy_text"]
            text = copy.get("text") if isinstance(copy, dict) else None
            if not isinstance(text, str) or not 1 <= len(text) <= COPY_TEXT_LIMIT:
                raise BadRequest("Bad Request: COPY_TEXT_INVALID")
        if "url" in button and urlsplit(str(button["url"])).scheme not in ("http", "https", "tg"):
            raise BadRequest("Bad Request: BUTTON_URL_INVALID")


def check_parse_mode(params: dict[str, Any]) -> str | None:
    mode = params.get("parse_mode")
    if mode is not None and mode not in PARSE_MODES:
        raise BadRequest(f"Bad Request: unsupported parse_mode \"{mode}\"")
    return mode
