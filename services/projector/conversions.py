"""Pure builders of the CAPI events the projector asks the dispatcher to send.

Event ids are stable across replays (Meta deduplicates on them): `evt_<token>`
(the browser Pixel's PageView id), `viewcontent_<token>`, `checkout_<payment_id>`,
`purchase_<payment_id>`. User data is raw; the dispatcher hashes it. Stage
events other than PageView keep the model's default action_source: the
dispatcher applies the pixel's configured action_source to them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from grim_schemas import ConversionRequested
from grim_schemas.events import ConversionUserData

from .timeutil import ms_to_iso

PRODUCER = "projector"
# A ConversionRequested as its JSON dict (what `encode` of the model gives), built
# directly: this is the hot path, and a unit test holds it to the model.
Conversion = dict[str, Any]
_DEFAULT_ACTION_SOURCE = ConversionRequested.model_fields["action_source"].default
STAGE_EVENTS = {"start": "ViewContent", "pix_generated": "InitiateCheckout", "paid": "Purchase"}


def conversion_id(stage: str, token: str, fact: dict[str, Any]) -> str:
    if stage == "start":
        return f"viewcontent_{token}"
    if stage == "pix_generated":
        return f"checkout_{fact['payment_id']}"
    if stage == "paid":
        return f"purchase_{fact['payment_id']}"
    raise ValueError(f"no conversion for stage {stage!r}")


def reais(cents: int) -> float | int:
    """Cents as a JSON number of reais, exact: 1990 -> 19.9, 2000 -> 20."""
    value = Decimal(cents) / 100
    return int(value) if value == value.to_integral_value() else float(value)


_USER_FIELDS = tuple(ConversionUserData.model_fields)


def _user_data(click: dict[str, Any], cookies: dict[str, Any] | None,
               external_id: str | None, payer: dict[str, Any] | None) -> dict[str, Any]:
    cookies = cookies or {}
    data: dict[str, Any] = dict.fromkeys(_USER_FIELDS)
    data.update(
        client_ip_address=click.get("client_ip"),
        client_user_agent=click.get("user_agent"),
        # Cookies the browser reported win over the click's: the Pixel may have set them.
        fbc=cookies.get("fbc") or click.get("fbc"),
        fbp=cookies.get("fbp") or click.get("fbp"),
        external_id=external_id,
    )
    if payer:
        data["em"] = payer.get("email")
        data["ph"] = payer.get("phone")
        names = (payer.get("name") or "").split()
        if names:
            data["fn"] = names[0]
            data["ln"] = names[-1] if len(names) > 1 else None
    return data


def _conversion(event_id: str, at_ms: int, event_name: str, click: dict[str, Any],
                user_data: dict[str, Any], custom_data: dict[str, Any], action_source: str,
                rule_version: int, projection_version: str) -> Conversion:
    at = ms_to_iso(at_ms)
    return {
        "event_id": event_id, "type": "conversion", "schema_version": 1, "occurred_at": at,
        "producer": PRODUCER, "event_name": event_name, "event_time": at,
        "pixel_id": click["pixel_id"], "tracking_token": click["tracking_token"],
        "action_source": action_source, "event_source_url": click.get("landing_url"),
        "user_data": user_data, "custom_data": custom_data, "rule_version": rule_version,
        "projection_version": projection_version,
    }


def page_view(click: dict[str, Any], cookies: dict[str, Any] | None, *, rule_version: int,
              projection_version: str) -> Conversion:
    return _conversion(click["pageview_event_id"], click["at_ms"], "PageView", click,
                       _user_data(click, cookies, None, None), {}, "website", rule_version,
                       projection_version)


def stage_conversion(stage: str, fact: dict[str, Any], at_ms: int, click: dict[str, Any],
                     cookies: dict[str, Any] | None, *, rule_version: int,
                     projection_version: str) -> Conversion:
    """ViewContent / InitiateCheckout / Purchase for one attributed stage fact."""
    custom: dict[str, Any] = {}
    payer = None
    if stage in ("pix_generated", "paid"):
        custom = {"value": reais(int(fact["amount_cents"])), "currency": fact.get("currency", "BRL"),
                  "order_id": fact["payment_id"]}
        if fact.get("product_id") is not None:
            custom["contents"] = [{"id": str(fact["product_id"]), "quantity": 1}]
    if stage == "paid":
        payer = fact.get("payer")
    user = _user_data(click, cookies, f"{fact['bot_id']}:{fact['telegram_user_id']}", payer)
    return _conversion(conversion_id(stage, click["tracking_token"], fact), at_ms,
                       STAGE_EVENTS[stage], click, user, custom, _DEFAULT_ACTION_SOURCE,
                       rule_version, projection_version)
