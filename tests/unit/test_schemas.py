from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from grim_schemas import TOPICS, MalformedEvent, decode, decode_any, encode, topic_for
from grim_schemas.events import (
    EVENT_TYPES,
    BotStarted,
    ClickRecorded,
    ConversionRequested,
    PaymentConfirmed,
)
from grim_schemas.generate import drift, render
from grim_schemas.topics import key_for

TOKEN = "0123456789abcdef0123456789abcdef"


def click(**overrides: object) -> ClickRecorded:
    fields: dict[str, object] = dict(
        producer="redirect",
        tracking_token=TOKEN,
        pageview_event_id=f"evt_{TOKEN}",
        pool_id=1,
        pool_slug="promo",
        bot_id=7,
        bot_username="promo_bot",
        landing_url="https://go.example/go/promo?fbclid=x",
    )
    fields.update(overrides)
    return ClickRecorded(**fields)  # type: ignore[arg-type]


def test_committed_json_schemas_match_the_models() -> None:
    assert drift() == [], "run `grim schemas generate` and commit schemas/jsonschema"


def test_drift_detects_a_changed_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name, text in render().items():
        (tmp_path / name).write_text(text)
    assert drift(tmp_path) == []
    (tmp_path / "click.schema.json").write_text("{}")
    (tmp_path / "ghost.schema.json").write_text("{}")
    assert sorted(drift(tmp_path)) == [
        "click.schema.json: differs from its model",
        "ghost.schema.json: no model generates it",
    ]


def test_every_event_has_the_envelope() -> None:
    for type_name, model in EVENT_TYPES.items():
        fields = model.model_fields
        for name in ("event_id", "type", "schema_version", "occurred_at", "producer"):
            assert name in fields, f"{type_name} lacks {name}"
        assert fields["type"].default == type_name


def test_round_trip_is_lossless_and_identifiers_are_verbatim() -> None:
    fbclid = "IwAR2xY-Zz_09%C3%A9Ab.cD"  # case, dashes, dots and escapes kept as given
    event = click(fbclid=fbclid, fbc=f"fb.1.1700000000000.{fbclid}.Bg", fbp="fb.1.1700.123")
    back = decode(encode(event), ClickRecorded)
    assert back == event
    assert back.fbclid == fbclid
    assert back.fbc == f"fb.1.1700000000000.{fbclid}.Bg"


def test_occurred_at_is_utc_with_milliseconds() -> None:
    local = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-3)))
    event = click(occurred_at=local)
    assert event.occurred_at == datetime(2026, 1, 2, 6, 4, 5, 678000, tzinfo=UTC)
    assert orjson.loads(encode(event))["occurred_at"] == "2026-01-02T06:04:05.678Z"
    with pytest.raises(MalformedEvent):
        decode(orjson.dumps({**orjson.loads(encode(event)), "occurred_at": "2026-01-02T06:04:05"}),
               ClickRecorded)


def test_events_are_frozen() -> None:
    event = click()
    with pytest.raises(Exception):  # pydantic raises ValidationError for frozen models
        event.fbclid = "changed"  # type: ignore[misc]


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    data = orjson.loads(encode(click()))
    data["schema_version"] = 2
    data["brand_new_field"] = {"nested": True}
    event = decode(orjson.dumps(data), ClickRecorded)
    assert event.schema_version == 2
    assert event.tracking_token == TOKEN


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"type": "click", "producer": "x"}', "tracking_token"),
        (orjson.dumps({"type": "mystery", "producer": "x"}), "unknown event type"),
    ],
)
def test_malformed_records_raise_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode_any(raw)


def test_bad_token_is_refused() -> None:
    with pytest.raises(ValueError):
        click(tracking_token="ABC")


def test_telegram_ids_are_64_bit() -> None:
    big = 2**62 + 11
    start = BotStarted(
        producer="bot-gateway", bot_id=big, telegram_user_id=big, chat_id=-(2**52), update_id=1
    )
    back = decode(encode(start), BotStarted)
    assert back.telegram_user_id == big and back.chat_id == -(2**52)
    assert key_for(back) == f"{big}:{big}".encode()


def test_topic_names_follow_the_convention() -> None:
    for spec in TOPICS.values():
        assert spec.name() == f"grim.{spec.stage}.v{spec.version}"
    assert topic_for(click()) == "grim.click.v1"
    assert topic_for(click(), "t1.") == "t1.grim.click.v1"


def test_topics_joined_together_are_co_partitioned() -> None:
    by_user = {TOPICS[s].partitions for s in
               ("start", "pix-generated", "paid", "refunded", "expired", "delivered")}
    by_token = {TOPICS[s].partitions for s in
                ("click", "click-cookies", "attributed", "conversions")}
    assert len(by_user) == 1 and len(by_token) == 1


def test_record_keys() -> None:
    assert key_for(click()) == TOKEN.encode()
    paid = PaymentConfirmed(
        producer="payments", bot_id=5, telegram_user_id=9, payment_id="p1", gateway="sandbox",
        gateway_event_id="g1", amount_cents=1990, paid_at=datetime.now(UTC),
    )
    assert key_for(paid) == b"5:9"
    conversion = ConversionRequested(
        producer="projector", event_id="purchase_p1", event_name="Purchase",
        event_time=datetime.now(UTC), pixel_id="123", tracking_token=TOKEN,
    )
    assert key_for(conversion) == TOKEN.encode()


def test_encoding_is_the_json_mode_dump_of_the_model() -> None:
    from grim_schemas.events import TelegramUpdateReceived

    update = {"update_id": 2**62, "message": {"text": "olá \u2028 😀", "location":
              {"latitude": -23.5505199, "longitude": 1e-7}, "entities": []}}
    events = [
        click(fbclid="IwAR-é", campaign_params={"grim": "c1", "x": ""}, client_ip="2001:db8::1"),
        TelegramUpdateReceived(producer="bot-gateway", bot_id=2**40, update_id=2**62,
                               update=update),
    ]
    for event in events:
        assert orjson.loads(encode(event)) == event.model_dump(mode="json")
        assert decode(encode(event), type(event)) == event


def test_event_ids_are_uuid4_hex() -> None:
    import uuid

    from grim_schemas.base import new_event_id

    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_a_forked_child_never_repeats_the_parents_ids() -> None:
    import os

    from grim_schemas.base import new_event_id

    new_event_id()  # the parent now holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_event_id()
