import hashlib

import pytest
from grim_dispatcher.hashing import (
    build_user_data,
    normalize_and_hash,
    normalize_phone,
    normalize_zip,
)
from grim_schemas.events import ConversionUserData


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("em", "  John.Doe@Example.COM "),
        ("em", "maria@gmail.com"),
        ("ph", "+55 (11) 98765-4321"),
        ("ph", "+1 650-555-1212"),
        ("ph", "0055 11 98765 4321"),
        ("fn", "  João "),
        ("ln", "SILVA"),
        ("ct", "São Paulo"),
        ("ct", "Rio de Janeiro"),
        ("st", "SP"),
        ("zp", "94025"),
        ("country", "BR"),
        ("country", " us "),
    ],
)
def test_agrees_with_the_official_sdk_where_meta_rules_agree(field: str, raw: str) -> None:
    # Only the pure Normalize helper: FacebookAdsApi is never initialised (no crash reports).
    sdk = pytest.importorskip("facebook_business.adobjects.serverside.normalize")
    Normalize = sdk.Normalize
    assert normalize_and_hash(field, raw) == Normalize.normalize_field(field, raw)


def test_brazilian_national_phone_gets_country_code_55() -> None:
    assert normalize_phone("(11) 98765-4321") == "5511987654321"
    assert normalize_phone("011 98765-4321") == "5511987654321"
    assert normalize_phone("21 3456-7890") == "552134567890"
    assert normalize_and_hash("ph", "(11) 98765-4321") == sha("5511987654321")
    # Already international: kept.
    assert normalize_phone("+55 11 98765 4321") == "5511987654321"
    assert normalize_phone("5511987654321") == "5511987654321"


def test_unusable_values_are_dropped_not_sent() -> None:
    assert normalize_and_hash("em", "not-an-email") is None
    assert normalize_and_hash("ph", "123") is None
    assert normalize_and_hash("country", "Narnia") is None
    assert normalize_and_hash("fn", "   ") is None
    assert normalize_and_hash("em", None) is None


def test_brazilian_cep_keeps_all_digits() -> None:
    # The SDK keeps only the part before the dash (a US ZIP+4 habit); Meta wants no dash.
    assert normalize_zip("01310-100") == "01310100"
    assert normalize_and_hash("zp", "01310-100") == sha("01310100")


def test_names_lose_punctuation_and_keep_accents() -> None:
    assert normalize_and_hash("fn", "Ana-Maria.") == sha("anamaria")
    assert normalize_and_hash("ln", "D'Ávila") == sha("dávila")


def test_country_names_of_brazil() -> None:
    assert normalize_and_hash("country", "Brasil") == sha("br")


def test_already_hashed_values_pass_through() -> None:
    digest = sha("someone@example.com")
    assert normalize_and_hash("em", digest.upper()) == digest


def test_user_data_hashes_customer_fields_and_never_browser_identifiers() -> None:
    user = ConversionUserData(
        client_ip_address="203.0.113.7",
        client_user_agent="Mozilla/5.0 (iPhone)",
        fbc="fb.1.1700000000000.AbCdEf_123.Ag",
        fbp="fb.1.1700000000000.123456789",
        external_id="0f8e2a9b7c6d5e4f3a2b1c0d9e8f7a6b",
        em="Buyer@Example.com",
        ph="(11) 98765-4321",
        fn="Maria",
        country="BR",
    )
    out = build_user_data(user)
    assert out["client_ip_address"] == "203.0.113.7"
    assert out["client_user_agent"] == "Mozilla/5.0 (iPhone)"
    assert out["fbc"] == "fb.1.1700000000000.AbCdEf_123.Ag"
    assert out["fbp"] == "fb.1.1700000000000.123456789"
    assert out["external_id"] == sha("0f8e2a9b7c6d5e4f3a2b1c0d9e8f7a6b")
    assert out["em"] == sha("buyer@example.com")
    assert out["ph"] == sha("5511987654321")
    assert out["fn"] == sha("maria")
    assert out["country"] == sha("br")
    assert "ln" not in out
