import hashlib
import hmac

import pytest

from grim_payments.signatures import (
    SignatureError,
    mercadopago_manifest,
    sign_mercadopago,
    sign_sandbox,
    verify_mercadopago,
    verify_sandbox,
)

SECRET = "your_secret_key_here"


def test_mercadopago_manifest_follows_the_documented_template() -> None:
    assert mercadopago_manifest("123456", "bb56a2f1-6aae-46ac-982e-9dcd3581d08e", "1742505638683") \
        == "id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1742505638683;"
    # Alphanumeric ids are lower-cased; absent parts are left out.
    assert mercadopago_manifest("ORD01ABC", None, "1") == "id:ord01abc;ts:1;"


def test_mercadopago_known_vector() -> None:
    manifest = "id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1742505638683;"
    expected = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    header = f"ts=1742505638683,v1={expected}"
    verify_mercadopago(SECRET, header, "123456", "bb56a2f1-6aae-46ac-982e-9dcd3581d08e")
    assert sign_mercadopago(SECRET, "123456", "bb56a2f1-6aae-46ac-982e-9dcd3581d08e",
                            "1742505638683") == header


@pytest.mark.parametrize("header", [
    None, "", "ts=1", "v1=abc", "ts=1742505638683,v1=" + "0" * 64,
])
def test_mercadopago_rejects_missing_or_wrong_signatures(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_mercadopago(SECRET, header, "123456", "req")


def test_mercadopago_signature_is_bound_to_the_id_and_request() -> None:
    header = sign_mercadopago(SECRET, "123456", "req-1", "99")
    verify_mercadopago(SECRET, header, "123456", "req-1")
    for data_id, request_id in (("123457", "req-1"), ("123456", "req-2")):
        with pytest.raises(SignatureError):
            verify_mercadopago(SECRET, header, data_id, request_id)
    with pytest.raises(SignatureError):
        verify_mercadopago("another-secret", header, "123456", "req-1")


def test_sandbox_signature_covers_body_and_time() -> None:
    body = b'{"data":{"id":"sbx1"}}'
    header = sign_sandbox("s3cret", body, ts=1_700_000_000)
    verify_sandbox("s3cret", header, body, now=1_700_000_010)
    with pytest.raises(SignatureError):
        verify_sandbox("s3cret", header, body + b" ", now=1_700_000_010)
    with pytest.raises(SignatureError):
        verify_sandbox("s3cret", header, body, now=1_700_010_000)  # replayed much later
    with pytest.raises(SignatureError):
        verify_sandbox("other", header, body, now=1_700_000_010)
