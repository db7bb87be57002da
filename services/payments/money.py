"""Cents <-> reais, exactly.

Amounts are integers in cents everywhere inside Grim. Some gateways (Mercado
Pago) speak reais with a decimal point; the conversion goes through Decimal and
strings so 19.90 never becomes 1989 cents.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_CENT = Decimal("0.01")


class InvalidAmount(ValueError):
    pass


def cents_to_reais(cents: int) -> Decimal:
    """1990 -> Decimal('19.90')."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidAmount(f"cents must be an int, got {type(cents).__name__}")
    return (Decimal(cents) / 100).quantize(_CENT)


def reais_to_cents(value: str | float | Decimal) -> int:
    """'19.90', 19.9, Decimal('19.9') -> 1990; refuses fractions of a cent.

    A float is read through its shortest repr (str), which is what a JSON
    parser produced from the gateway's text, so 19.9 is 19.90 and not
    19.899999....
    """
    if isinstance(value, bool):
        raise InvalidAmount("a boolean is not an amount")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise InvalidAmount(f"not a number: {value!r}") from exc
    if not amount.is_finite():
        raise InvalidAmount(f"not a finite amount: {value!r}")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise InvalidAmount(f"{value!r} has a fraction of a cent")
    return int(cents)


def format_reais(cents: int) -> str:
    """1990 -> '19.90' (the string Mercado Pago and BR Codes expect)."""
    return f"{cents_to_reais(cents):.2f}"
