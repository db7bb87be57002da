"""One frozen model per stage fact (see DESIGN.md, "Events").

Field names are the contract between services: renaming one is a new schema
version and a new topic. Identifiers that come from outside (fbclid, _fbp, _fbc,
user agents, Telegram payloads) are kept as strings, byte-for-byte.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import TOKEN_PATTERN, Event, UtcDatetime

FbcOrigin = Literal["cookie", "generated", "none"]
StageName = Literal["click", "start", "pix_generated", "paid", "refunded", "expired", "delivered"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClickRecorded(Event):
    """A visitor followed an ad link through `/go/{slug}`."""

    type: Literal["click"] = "click"
    tracking_token: str = Field(pattern=TOKEN_PATTERN)
    pageview_event_id: str = Field(description="evt_<token>, shared with the browser Pixel")
    pool_id: int
    pool_slug: str
    bot_id: int
    bot_username: str
    pixel_id: str | None = None
    fbclid: str | None = None
    fbp: str | None = None
    fbc: str | None = None
    fbc_origin: FbcOrigin = "none"
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    campaign_params: dict[str, str] = Field(
        default_factory=dict, description="Other campaign parameters (grim, src, sck, ...)"
    )
    client_ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    landing_url: str
    is_crawler: bool = False
    crawler_name: str | None = None


class ClickCookiesReported(Event):
    """The bridge page reported the browser's `_fbp`/`_fbc` after the Pixel ran."""

    type: Literal["click_cookies"] = "click_cookies"
    tracking_token: str = Field(pattern=TOKEN_PATTERN)
    fbp: str | None = None
    fbc: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class TelegramUpdateReceived(Event):
    """A Telegram update accepted by the webhook (secret checked, update_id new)."""

    type: Literal["telegram_update"] = "telegram_update"
    bot_id: int
    update_id: int
    update: dict[str, Any] = Field(description="The update exactly as Telegram sent it")


class BotUserFact(Event):
    """Facts keyed by bot user (`<bot_id>:<telegram_user_id>`)."""

    bot_id: int
    telegram_user_id: int = Field(description="64-bit Telegram user id")

    @property
    def bot_user_key(self) -> str:
        return f"{self.bot_id}:{self.telegram_user_id}"


class BotStarted(BotUserFact):
    """A user sent `/start`, with or without a tracking token."""

    type: Literal["start"] = "start"
    chat_id: int
    update_id: int
    payload: str | None = Field(default=None, description="Raw /start payload, verbatim")
    tracking_token: str | None = Field(default=None, pattern=TOKEN_PATTERN)
    username: str | None = None
    first_name: str | None = None
    language_code: str | None = None


class Payer(_Part):
    name: str | None = None
    email: str | None = None
    document: str | None = None
    phone: str | None = None


class PixGenerated(BotUserFact):
    """A PIX charge was created at the gateway."""

    type: Literal["pix_generated"] = "pix_generated"
    payment_id: str
    product_id: int
    product_name: str | None = None
    amount_cents: int = Field(gt=0)
    currency: Literal["BRL"] = "BRL"
    gateway: str
    gateway_charge_id: str
    expires_at: UtcDatetime | None = None
    tracking_token: str | None = Field(
        default=None, pattern=TOKEN_PATTERN, description="Token the funnel resolved at the time"
    )


class PaymentConfirmed(BotUserFact):
    """The gateway confirmed the payment."""

    type: Literal["paid"] = "paid"
    payment_id: str
    gateway: str
    gateway_event_id: str
    amount_cents: int = Field(gt=0)
    currency: Literal["BRL"] = "BRL"
    paid_at: UtcDatetime
    payer: Payer | None = None
    product_id: int | None = None
    tracking_token: str | None = Field(default=None, pattern=TOKEN_PATTERN)
    delivery_url: str | None = Field(default=None, description="Link the bot sends the buyer")


class PaymentRefunded(BotUserFact):
    """Money went back to the buyer (refund or chargeback)."""

    type: Literal["refunded"] = "refunded"
    payment_id: str
    gateway: str
    gateway_event_id: str
    amount_cents: int = Field(ge=0)
    refunded_at: UtcDatetime
    reason: Literal["refunded", "charged_back"] = "refunded"


class PaymentExpired(BotUserFact):
    """A pending charge expired unpaid."""

    type: Literal["expired"] = "expired"
    payment_id: str
    expired_at: UtcDatetime


class DeliveryOpened(BotUserFact):
    """The buyer opened the delivery page for the first time."""

    type: Literal["delivered"] = "delivered"
    payment_id: str
    opened_at: UtcDatetime


class StageAttributed(Event):
    """A stage fact with the tracking token the projector assigned to it."""

    type: Literal["attributed"] = "attributed"
    stage: StageName
    source_event_id: str
    tracking_token: str | None = Field(default=None, pattern=TOKEN_PATTERN)
    bot_id: int | None = None
    telegram_user_id: int | None = None
    rule_version: int
    fact: dict[str, Any] = Field(description="The stage fact as published")


class ConversionUserData(_Part):
    """Raw user data; the dispatcher normalises and hashes what Meta wants hashed."""

    client_ip_address: str | None = None
    client_user_agent: str | None = None
    fbc: str | None = None
    fbp: str | None = None
    external_id: str | None = None
    em: str | None = None
    ph: str | None = None
    fn: str | None = None
    ln: str | None = None
    ct: str | None = None
    st: str | None = None
    zp: str | None = None
    country: str | None = None


class ConversionRequested(Event):
    """One Conversions API event to send.

    `event_id` is Meta's deduplication id and is stable across replays:
    `evt_<token>` for PageView, `purchase_<payment_id>` for Purchase, ...
    """

    type: Literal["conversion"] = "conversion"
    event_name: Literal["PageView", "ViewContent", "InitiateCheckout", "Purchase"]
    event_time: UtcDatetime
    pixel_id: str
    tracking_token: str | None = Field(default=None, pattern=TOKEN_PATTERN)
    action_source: str = "website"
    event_source_url: str | None = None
    user_data: ConversionUserData = Field(default_factory=ConversionUserData)
    custom_data: dict[str, Any] = Field(default_factory=dict)
    rule_version: int = 1
    projection_version: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    model.model_fields["type"].default: model
    for model in (
        ClickRecorded,
        ClickCookiesReported,
        TelegramUpdateReceived,
        BotStarted,
        PixGenerated,
        PaymentConfirmed,
        PaymentRefunded,
        PaymentExpired,
        DeliveryOpened,
        StageAttributed,
        ConversionRequested,
    )
}
