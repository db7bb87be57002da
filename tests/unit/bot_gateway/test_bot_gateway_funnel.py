"""Funnel rendering within Telegram's limits, and idempotency keys."""

from __future__ import annotations

import base64

import pytest
from grim_bot_gateway.funnel import (
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    TEXT_LIMIT,
    FunnelConfig,
    format_brl,
    idempotency_key,
    render_delivery,
    render_pix,
    render_welcome,
    split_text,
)
from pydantic import ValidationError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


def offers(n: int = 1) -> list[dict]:
    return [{"product_id": 10 + i, "name": f"Curso {i}", "price_cents": 4990 + i}
            for i in range(n)]


def charge(code: str) -> dict:
    return {"payment_id": "pay_1", "status": "pending", "amount_cents": 4990, "currency": "BRL",
            "product_name": "Curso", "pix_copy_paste": code,
            "qr_png_base64": base64.b64encode(PNG).decode(), "expires_at": None}


def test_split_keeps_every_character_and_respects_the_limit() -> None:
    text = "\n\n".join(f"Parágrafo {i} " + "palavra " * 300 for i in range(10))
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(len(p) <= TEXT_LIMIT for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == \
        text.replace(" ", "").replace("\n", "")


def test_split_prefers_paragraph_boundaries() -> None:
    text = "a" * 3000 + "\n\n" + "b" * 3000
    assert split_text(text) == ["a" * 3000, "b" * 3000]


def test_split_hard_cuts_a_single_huge_word() -> None:
    assert [len(p) for p in split_text("x" * 9000)] == [4096, 4096, 808]


def test_welcome_with_media_puts_the_first_part_in_the_caption_and_loses_nothing() -> None:
    config = FunnelConfig(welcome_text="palavra " * 1000, welcome_media="https://x/p.jpg",
                          welcome_media_type="photo", offers=offers())
    out = render_welcome(config, 5, "Ana")
    assert out[0].method == "sendPhoto"
    assert len(out[0].params["caption"]) <= CAPTION_LIMIT
    texts = [o.params["text"] for o in out[1:-1]]
    assert all(len(t) <= TEXT_LIMIT for t in texts)
    assert (out[0].params["caption"] + " " + " ".join(texts)).split() == \
        ("palavra " * 1000).split()
    assert out[-1].params["reply_markup"]["inline_keyboard"]


def test_offer_shows_products_prices_and_short_callback_data() -> None:
    config = FunnelConfig(offers=offers(3))
    offer = render_welcome(config, 5, None)[-1]
    assert "R$ 49,90" in offer.params["text"] and "Curso 2" in offer.params["text"]
    buttons = [row[0] for row in offer.params["reply_markup"]["inline_keyboard"]]
    assert [b["callback_data"] for b in buttons] == ["pix:10", "pix:11", "pix:12"]
    assert all(len(b["callback_data"].encode()) <= CALLBACK_DATA_LIMIT for b in buttons)


def test_no_offer_message_without_offers_and_name_is_filled() -> None:
    out = render_welcome(FunnelConfig(welcome_text="Oi {name}"), 5, "Ana")
    assert [o.params["text"] for o in out] == ["Oi Ana"]


def test_html_funnel_escapes_user_values() -> None:
    config = FunnelConfig(welcome_text="<b>Oi {name}</b>", parse_mode="HTML")
    out = render_welcome(config, 5, "<script>")
    assert out[0].params["text"] == "<b>Oi &lt;script&gt;</b>"
    assert out[0].params["parse_mode"] == "HTML"


def test_seller_templates_are_not_python_format_strings() -> None:
    out = render_welcome(FunnelConfig(welcome_text="{0.__class__} {name} {x}"), 5, "Ana")
    assert out[0].params["text"] == "{0.__class__} Ana {x}"


def test_pix_uses_copy_text_button_when_it_fits() -> None:
    code = "00020126" + "1" * 200
    out = render_pix(FunnelConfig(), 5, charge(code))
    assert [o.method for o in out] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert out[1].upload == ("photo", "pix.png", PNG)
    button = out[2].params["reply_markup"]["inline_keyboard"][0][0]
    assert button["copy_text"] == {"text": code}
    assert out[2].params["text"] == code
    assert "R$ 49,90" in out[0].params["text"]


def test_pix_without_copy_button_when_code_is_longer_than_256() -> None:
    code = "0" * 257
    out = render_pix(FunnelConfig(), 5, charge(code))
    assert out[-1].params["text"] == code
    assert "reply_markup" not in out[-1].params


def test_delivery_has_the_link_button_and_after_payment_messages() -> None:
    config = FunnelConfig(after_payment_messages=["Obrigado!"])
    out = render_delivery(config, 5, "https://grim.example/d/abc")
    assert "https://grim.example/d/abc" in out[0].params["text"]
    assert out[0].params["reply_markup"]["inline_keyboard"][0][0]["url"] == \
        "https://grim.example/d/abc"
    assert out[1].params["text"] == "Obrigado!"


@pytest.mark.parametrize(("cents", "text"),
                         [(1, "R$ 0,01"), (4990, "R$ 49,90"), (123456789, "R$ 1.234.567,89")])
def test_brl_format(cents: int, text: str) -> None:
    assert format_brl(cents) == text


def test_idempotency_key_is_stable_per_user_product_attempt() -> None:
    assert idempotency_key(1, 2, 3, 42) == idempotency_key(1, 2, 3, 42)
    keys = {idempotency_key(1, 2, 3, 42), idempotency_key(1, 2, 3, 43),
            idempotency_key(1, 2, 4, 42), idempotency_key(1, 9, 3, 42)}
    assert len(keys) == 4


@pytest.mark.parametrize("bad", [
    {"welcome_media": "https://x/p.jpg"},
    {"offers": offers(1) * 2},
    {"offers": [{"product_id": 0, "name": "x", "price_cents": 1}]},
    {"parse_mode": "Markdown"},
    {"unknown": 1},
])
def test_invalid_funnels_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        FunnelConfig.model_validate(bad)
