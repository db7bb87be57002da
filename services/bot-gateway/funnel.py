"""The sales funnel as data, and what it renders into Telegram calls. Pure, no I/O.

Telegram's limits shape everything here: message text <= 4096 characters, media
captions <= 1024, callback_data <= 64 bytes, copy_text <= 256 characters.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any, Literal

from grim_bot_gateway.updates import PIX_CALLBACK_PREFIX
from pydantic import BaseModel, ConfigDict, Field, model_validator

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
COPY_TEXT_LIMIT = 256
MEDIA_METHODS = {"photo": "sendPhoto", "video": "sendVideo", "animation": "sendAnimation"}


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: int = Field(gt=0, description="Product id in the payments service")
    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(gt=0, description="Price shown to the buyer; payments charges its own")
    button_text: str = Field(default="Gerar PIX", min_length=1, max_length=40)


class FunnelConfig(BaseModel):
    """One bot's funnel. Templates may use {name}, {price}, {product}, {delivery_url}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    welcome_text: str = Field(default="Olá, {name}! Seja bem-vindo.", min_length=1,
                              max_length=20000)
    welcome_media_type: Literal["photo", "video", "animation"] | None = None
    welcome_media: str | None = Field(default=None, description="URL or Telegram file_id")
    offer_text: str = Field(default="Escolha sua oferta:", min_length=1, max_length=4000)
    offers: list[Offer] = Field(default_factory=list, max_length=20)
    parse_mode: Literal["HTML"] | None = None
    pix_text: str = Field(
        default="PIX de {price} para {product} gerado. Pague com o QR Code ou copie o código:",
        min_length=1, max_length=4000,
    )
    copy_button_text: str = Field(default="Copiar código PIX", min_length=1, max_length=40)
    paid_text: str = Field(
        default="Pagamento confirmado! Acesse seu produto: {delivery_url}", min_length=1,
        max_length=4000,
    )
    paid_button_text: str = Field(default="Acessar", min_length=1, max_length=40)
    after_payment_messages: list[str] = Field(default_factory=list, max_length=10)
    pix_error_text: str = "Não consegui gerar o PIX agora. Tente de novo em instantes."
    unavailable_text: str = "Este produto não está disponível no momento."

    @model_validator(mode="after")
    def _media_needs_type(self) -> FunnelConfig:
        if bool(self.welcome_media) != bool(self.welcome_media_type):
            raise ValueError("welcome_media and welcome_media_type go together")
        ids = [o.product_id for o in self.offers]
        if len(ids) != len(set(ids)):
            raise ValueError("each product may appear in one offer only")
        return self

    def offer(self, product_id: int) -> Offer | None:
        return next((o for o in self.offers if o.product_id == product_id), None)


@dataclass(frozen=True)
class Outgoing:
    """One Bot API call; `upload` is (field, filename, bytes) sent as multipart."""

    method: str
    params: dict[str, Any]
    upload: tuple[str, str, bytes] | None = None
    counts_as_message: bool = field(default=True)


def format_brl(cents: int) -> str:
    reais, rest = divmod(cents, 100)
    return f"R$ {reais:,}".replace(",", ".") + f",{rest:02d}"


def fill(template: str, values: dict[str, str], parse_mode: str | None) -> str:
    """Replace {placeholders} literally (never str.format on seller text)."""
    for key, value in values.items():
        safe = html.escape(value, quote=False) if parse_mode == "HTML" else value
        template = template.replace("{" + key + "}", safe)
    return template


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at paragraph, line, then word boundaries; hard-cut only a single huge word."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > limit // 4:
                break
        else:
            cut = limit
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _text(chat_id: int, text: str, parse_mode: str | None,
          markup: dict[str, Any] | None = None) -> Outgoing:
    params: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    if markup:
        params["reply_markup"] = markup
    return Outgoing("sendMessage", params)


def render_welcome(config: FunnelConfig, chat_id: int, first_name: str | None) -> list[Outgoing]:
    """Welcome media/text then the offer; long text is split, a caption carries the first part."""
    mode = config.parse_mode
    text = fill(config.welcome_text, {"name": first_name or ""}, mode)
    out: list[Outgoing] = []
    if config.welcome_media and config.welcome_media_type:
        caption = split_text(text, CAPTION_LIMIT)[0]
        rest = text.strip()[len(caption):]
        params: dict[str, Any] = {"chat_id": chat_id, config.welcome_media_type:
                                  config.welcome_media, "caption": caption}
        if mode:
            params["parse_mode"] = mode
        out.append(Outgoing(MEDIA_METHODS[config.welcome_media_type], params))
        out.extend(_text(chat_id, piece, mode) for piece in split_text(rest))
    else:
        out.extend(_text(chat_id, piece, mode) for piece in split_text(text))
    if config.offers:
        out.append(render_offer(config, chat_id))
    return out


def render_offer(config: FunnelConfig, chat_id: int) -> Outgoing:
    mode = config.parse_mode
    lines = [fill(config.offer_text, {}, mode), ""]
    rows = []
    for offer in config.offers:
        price = format_brl(offer.price_cents)
        name = html.escape(offer.name, quote=False) if mode == "HTML" else offer.name
        lines.append(f"{name}: {price}")
        data = f"{PIX_CALLBACK_PREFIX}{offer.product_id}"
        assert len(data.encode()) <= CALLBACK_DATA_LIMIT
        rows.append([{"text": f"{offer.button_text} - {price}", "callback_data": data}])
    body = split_text("\n".join(lines))[0]
    return _text(chat_id, body, mode, {"inline_keyboard": rows})


def idempotency_key(bot_id: int, user_id: int, product_id: int, attempt: int | str) -> str:
    """Per user + product + attempt: a redelivered or double-tapped button asks for the same
    charge; a new offer (a new attempt) asks for a new one."""
    return f"bg:{bot_id}:{user_id}:{product_id}:{attempt}"


def render_pix(config: FunnelConfig, chat_id: int, charge: dict[str, Any]) -> list[Outgoing]:
    """Intro, the QR image (uploaded), then the copy-paste code with a copy button when it fits."""
    mode = config.parse_mode
    values = {"price": format_brl(int(charge["amount_cents"])),
              "product": str(charge.get("product_name") or "")}
    out = [_text(chat_id, split_text(fill(config.pix_text, values, mode))[0], mode)]
    qr = charge.get("qr_png_base64")
    if qr:
        out.append(Outgoing("sendPhoto", {"chat_id": chat_id},
                            ("photo", "pix.png", base64.b64decode(qr))))
    code = str(charge["pix_copy_paste"])
    markup = None
    if len(code) <= COPY_TEXT_LIMIT:
        markup = {"inline_keyboard": [[{"text": config.copy_button_text,
                                        "copy_text": {"text": code}}]]}
    out.append(_text(chat_id, code[:TEXT_LIMIT], None, markup))
    return out


def render_delivery(config: FunnelConfig, chat_id: int, delivery_url: str | None) -> list[Outgoing]:
    mode = config.parse_mode
    text = fill(config.paid_text, {"delivery_url": delivery_url or ""}, mode)
    markup = None
    if delivery_url and delivery_url.startswith(("https://", "http://")):
        markup = {"inline_keyboard": [[{"text": config.paid_button_text, "url": delivery_url}]]}
    pieces = split_text(text)
    out = [_text(chat_id, p, mode, markup if i == len(pieces) - 1 else None)
           for i, p in enumerate(pieces)]
    for extra in config.after_payment_messages:
        out.extend(_text(chat_id, p, mode) for p in split_text(fill(extra, {}, mode)))
    return out


def render_notice(config: FunnelConfig, chat_id: int, text: str) -> Outgoing:
    return _text(chat_id, split_text(text)[0], None)
