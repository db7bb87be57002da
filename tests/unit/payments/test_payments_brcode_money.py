import json
from decimal import Decimal

import brcode as pypi_brcode
import crc as pypi_crc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grim_payments.brcode import InvalidBrCode, build_static, crc16_ccitt_false, parse, parse_tlv
from grim_payments.money import InvalidAmount, cents_to_reais, format_reais, reais_to_cents

# The example of the Banco Central's "Manual do BR Code" (static, no amount).
BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


def test_crc16_ccitt_false_check_value() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE (a.k.a. IBM-3740).
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_builder_reproduces_the_central_bank_example() -> None:
    code = build_static(pix_key="123e4567-e12b-12d1-a456-426655440000",
                        merchant_name="Fulano de Tal", merchant_city="BRASILIA")
    assert code == BCB_EXAMPLE
    assert parse(code)["63"] == "1D3D"


@given(data=st.binary(max_size=300))
def test_crc_matches_an_independent_library(data: bytes) -> None:
    calculator = pypi_crc.Calculator(pypi_crc.Crc16.IBM_3740)
    assert crc16_ccitt_false(data) == calculator.checksum(data)


@given(
    cents=st.integers(min_value=1, max_value=99_999_999),
    txid=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=25),
    key=st.emails(),
)
def test_independent_parser_reads_what_we_build(cents: int, txid: str, key: str) -> None:
    code = build_static(pix_key=key[:77], merchant_name="Loja Teste", merchant_city="Sao Paulo",
                        amount_cents=cents, txid=txid)
    parsed = pypi_brcode.QR(code)
    assert parsed.MAI_GUI_value == "br.gov.bcb.pix"
    assert parsed.MAI_CHAVEPIX_value == key[:77]
    assert parsed.TC_value == "986"
    assert parsed.TA_value == format_reais(cents)
    assert parsed.ADF_REF_value == txid
    assert parsed.CRC_value == f"{crc16_ccitt_false(code[:-4].encode()):04X}"
    fields = parse(code)
    assert fields["53"] == "986" and fields["58"] == "BR"
    assert parse_tlv(fields["26"])["00"] == "br.gov.bcb.pix"


def test_accents_are_stripped_and_lengths_capped() -> None:
    code = build_static(pix_key="k", merchant_name="Açaí da Esquina do João Ltda ME",
                        merchant_city="São José dos Campos", amount_cents=100)
    fields = parse(code)
    assert fields["59"] == "Acai da Esquina do Joao L"
    assert fields["60"] == "Sao Jose dos Ca"


def test_parse_rejects_a_tampered_code() -> None:
    tampered = BCB_EXAMPLE.replace("BRASILIA", "BRASILIO")
    with pytest.raises(InvalidBrCode):
        parse(tampered)
    with pytest.raises(InvalidBrCode):
        build_static(pix_key="k", merchant_name="x", merchant_city="y", txid="has space")


@pytest.mark.parametrize(("value", "cents"), [
    ("19.90", 1990), ("19.9", 1990), (19.9, 1990), (0.1, 10), ("0.01", 1), (1, 100),
    (Decimal("1234567.89"), 123456789), (0.29, 29), (1.15, 115),
])
def test_reais_to_cents_is_exact(value: object, cents: int) -> None:
    assert reais_to_cents(value) == cents  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["19.901", "abc", "NaN", True, 0.001])
def test_reais_to_cents_refuses_what_is_not_whole_cents(value: object) -> None:
    with pytest.raises(InvalidAmount):
        reais_to_cents(value)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**12))
def test_cents_round_trip_through_json_numbers(cents: int) -> None:
    # What the Mercado Pago adapter sends: a float built from the 2-decimal string.
    wire = json.dumps({"transaction_amount": float(format_reais(cents))})
    assert reais_to_cents(json.loads(wire)["transaction_amount"]) == cents
    assert cents_to_reais(cents) == Decimal(cents) / 100
