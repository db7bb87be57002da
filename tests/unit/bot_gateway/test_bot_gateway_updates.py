"""Payload parsing and update classification, on realistic update JSON."""

from __future__ import annotations

import pytest
from grim_bot_gateway.ingest import parse_update
from grim_bot_gateway.updates import classify, parse_start, pix_product, update_type

from tests.unit.bot_gateway import tg_factory as tg

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "payload", "token"),
    [
        (f"/start {TOKEN}", TOKEN, TOKEN),
        ("/start", None, None),
        ("/start   ", None, None),
        (f"/start@loja_bot {TOKEN}", TOKEN, TOKEN),
        ("/start 0123456789ABCDEF0123456789ABCDEF", "0123456789ABCDEF0123456789ABCDEF", None),
        ("/start insta_bio-2", "insta_bio-2", None),
        (f"/start {TOKEN}0", f"{TOKEN}0", None),
        ("/start " + TOKEN[:31], TOKEN[:31], None),
    ],
)
def test_start_payload_is_kept_verbatim_and_token_only_when_32_lowercase_hex(
    text: str, payload: str | None, token: str | None
) -> None:
    parsed = parse_start(text)
    assert parsed is not None
    assert parsed.payload == payload
    assert parsed.tracking_token == token


@pytest.mark.parametrize("text", ["hello", "/starting", "/help", "", None, " /start x"])
def test_non_start_texts_are_not_starts(text: str | None) -> None:
    assert parse_start(text) is None


def test_start_update_carries_64_bit_ids_and_user_fields() -> None:
    big = 8_123_456_789_012
    incoming = classify(tg.start(1, big, TOKEN))
    assert incoming.kind == "start"
    assert incoming.user_id == big and incoming.chat_id == big
    assert incoming.start is not None and incoming.start.tracking_token == TOKEN
    assert incoming.first_name == "Ana" and incoming.language_code == "pt-br"


def test_callback_update_carries_data_and_the_offer_message() -> None:
    incoming = classify(tg.callback(2, 55, "pix:7", offer_message_id=99))
    assert incoming.kind == "callback"
    assert incoming.callback_data == "pix:7"
    assert incoming.callback_message_id == 99
    assert incoming.chat_id == 55 and incoming.user_id == 55
    assert pix_product(incoming.callback_data) == 7


@pytest.mark.parametrize("data", ["pix:", "pix:x", "buy:7", None, "pix:-1", "pix:" + "9" * 30])
def test_other_callback_data_is_not_a_product(data: str | None) -> None:
    assert pix_product(data) is None


def test_block_and_unblock_are_recognised() -> None:
    assert classify(tg.my_chat_member(3, 5, blocked=True)).kind == "blocked"
    assert classify(tg.my_chat_member(4, 5, blocked=False)).kind == "unblocked"


@pytest.mark.parametrize(
    ("update", "expected_type"),
    [
        (tg.sticker(5, 9), "message"),
        (tg.edited(6, 9, "/start x"), "edited_message"),
        (tg.channel_post(7), "channel_post"),
        ({"update_id": 8, "poll": {"id": "1"}}, "poll"),
        ({"update_id": 9, "something_new": {}}, "unknown"),
        ({"update_id": 10, "message": "not an object"}, "message"),
        ({"update_id": 11, "callback_query": {"id": 5}}, "callback_query"),
    ],
)
def test_other_updates_are_ignored_not_crashing(update: dict, expected_type: str) -> None:
    incoming = classify(update)
    assert incoming.kind in ("ignored", "message")
    assert update_type(update) == expected_type


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "object"),
        (b'{"message": {}}', "update_id"),
        (b'{"update_id": "5"}', "update_id"),
        (b'{"update_id": -1}', "update_id"),
        (b'{"update_id": true}', "update_id"),
        (b'{"update_id": 99999999999999999999}', "update_id"),
    ],
)
def test_malformed_bodies_are_explained(body: bytes, reason: str) -> None:
    result = parse_update(body)
    assert isinstance(result, str) and reason in result


def test_a_real_update_parses() -> None:
    import orjson

    update = tg.start(123, 5, TOKEN)
    assert parse_update(orjson.dumps(update)) == update
