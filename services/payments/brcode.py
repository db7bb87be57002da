"""BR Code (EMV QRCPS-MPM) for PIX: a static copy-and-paste payload.

Layout from the Banco Central's "Manual do BR Code": TLV fields with two-digit
ids and lengths; merchant account information (26) holds the GUI
`br.gov.bcb.pix` and the key; currency 986 (BRL); the CRC16/CCITT-FALSE
(poly 0x1021, init 0xFFFF) is computed over the whole payload including the
`6304` that introduces it.
"""

from __future__ import annotations

import re
import unicodedata

from .money import format_reais

PIX_GUI = "br.gov.bcb.pix"


class InvalidBrCode(ValueError):
    pass


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise InvalidBrCode(f"field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def _ascii(text: str, limit: int) -> str:
    # Banking apps reject accents in merchant name/city; the manual asks for plain ASCII.
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", plain).strip()[:limit]


def build_static(
    *,
    pix_key: str,
    merchant_name: str,
    merchant_city: str,
    amount_cents: int | None = None,
    txid: str = "***",
    description: str | None = None,
) -> str:
    """A static PIX BR Code; `txid` is 1-25 alphanumerics (or *** for none)."""
    if not pix_key:
        raise InvalidBrCode("a PIX key is required")
    if txid != "***" and not re.fullmatch(r"[A-Za-z0-9]{1,25}", txid):
        raise InvalidBrCode("txid must be 1-25 letters or digits")
    account = _tlv("00", PIX_GUI) + _tlv("01", pix_key)
    if description:
        account += _tlv("02", _ascii(description, 40))
    payload = (
        _tlv("00", "01")
        + _tlv("26", account)
        + _tlv("52", "0000")
        + _tlv("53", "986")
        + (_tlv("54", format_reais(amount_cents)) if amount_cents else "")
        + _tlv("58", "BR")
        + _tlv("59", _ascii(merchant_name, 25) or "N")
        + _tlv("60", _ascii(merchant_city, 15) or "SAO PAULO")
        + _tlv("62", _tlv("05", txid))
        + "6304"
    )
    return payload + f"{crc16_ccitt_false(payload.encode()):04X}"


def parse(code: str) -> dict[str, str]:
    """Top-level TLV fields of a BR Code, after checking its CRC."""
    if len(code) < 8 or code[-8:-4] != "6304":
        raise InvalidBrCode("missing CRC field 63")
    expected = f"{crc16_ccitt_false(code[:-4].encode()):04X}"
    if code[-4:].upper() != expected:
        raise InvalidBrCode(f"CRC mismatch: {code[-4:]} != {expected}")
    return parse_tlv(code)


def parse_tlv(data: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise InvalidBrCode(f"truncated field at {pos}")
        tag, size = data[pos:pos + 2], data[pos + 2:pos + 4]
        if not size.isdigit():
            raise InvalidBrCode(f"bad length at {pos}")
        end = pos + 4 + int(size)
        if end > len(data):
            raise InvalidBrCode(f"field {tag} runs past the end")
        fields[tag] = data[pos + 4:end]
        pos = end
    return fields
