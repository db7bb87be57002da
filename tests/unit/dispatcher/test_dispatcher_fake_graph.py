"""The fake Graph API refuses what Meta refuses (the dispatcher's tests rely on it)."""

import hashlib
import time

import httpx
import orjson
import pytest

from grim.sandbox.graph import (
    SUBCODE_FBC,
    SUBCODE_FUTURE,
    SUBCODE_HASHING,
    SUBCODE_MISSING,
    SUBCODE_PURCHASE_VALUE,
    SUBCODE_TOO_MANY,
    SUBCODE_TOO_OLD,
    FakeGraph,
    create_app,
)

URL = "/v21.0/1234/events"


def good(i: int = 0, **over) -> dict:
    event = {
        "event_name": "Purchase", "event_time": int(time.time()) - 60,
        "event_id": f"purchase_{i}", "action_source": "website",
        "event_source_url": "https://x.test/go/a",
        "user_data": {"client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.7",
                      "fbc": "fb.1.1700000000000.IwAR_abc-1", "fbp": "fb.1.1700000000000.42",
                      "em": hashlib.sha256(b"a@b.co").hexdigest()},
        "custom_data": {"value": 10.5, "currency": "BRL"},
    }
    event.update(over)
    return event


@pytest.fixture
def fake() -> FakeGraph:
    return FakeGraph(seed=1)


@pytest.fixture
async def client(fake: FakeGraph):
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://graph") as c:
        yield c


async def post(client: httpx.AsyncClient, events: list, **params) -> httpx.Response:
    return await client.post(URL, json={"data": events, "access_token": "tok", **params})


async def test_accepts_json_body_and_records(client, fake) -> None:
    r = await post(client, [good(1), good(2)])
    assert r.status_code == 200
    body = r.json()
    assert body["events_received"] == 2 and body["messages"] == [] and body["fbtrace_id"]
    assert [e["event_id"] for e in fake.events("1234")] == ["purchase_1", "purchase_2"]


async def test_accepts_sdk_form_fields(client, fake) -> None:
    r = await client.post(URL, data={"data": orjson.dumps([good(3)]).decode(),
                                     "access_token": "tok"})
    assert r.status_code == 200 and r.json()["events_received"] == 1
    assert fake.events()[0]["event_id"] == "purchase_3"


async def test_fbc_with_param_builder_suffix_is_valid(client) -> None:
    ev = good(user_data={**good()["user_data"], "fbc": "fb.1.1700000000000.IwAR_x.Ag"})
    assert (await post(client, [ev])).status_code == 200


@pytest.mark.parametrize(
    ("event", "subcode"),
    [
        (good(event_time=int(time.time()) - 8 * 86400), SUBCODE_TOO_OLD),
        (good(event_time=int(time.time()) + 3600), SUBCODE_FUTURE),
        (good(custom_data={"currency": "BRL"}), SUBCODE_PURCHASE_VALUE),
        (good(custom_data={"value": 1}), SUBCODE_PURCHASE_VALUE),
        (good(user_data={**good()["user_data"], "fbc": "fbclid=abc"}), SUBCODE_FBC),
        (good(user_data={**good()["user_data"], "em": "a@b.co"}), SUBCODE_HASHING),
        (good(user_data={**good()["user_data"], "em": "A" * 64}), SUBCODE_HASHING),
        (good(user_data={**good()["user_data"], "fbp": "a" * 64}), SUBCODE_HASHING),
        (good(user_data={"client_ip_address": "203.0.113.7"}), SUBCODE_MISSING),
        (good(event_source_url=None), SUBCODE_MISSING),
    ],
)
async def test_one_bad_event_rejects_the_whole_request(client, fake, event, subcode) -> None:
    r = await post(client, [good(1), event, good(2)])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == 100 and error["error_subcode"] == subcode
    assert "data[1]" in error["error_user_msg"] and error["fbtrace_id"]
    assert fake.events() == []


async def test_system_generated_needs_no_browser_data(client) -> None:
    ev = good(action_source="system_generated", event_source_url=None,
              user_data={"external_id": "abc"})
    assert (await post(client, [ev])).status_code == 200


async def test_more_than_1000_events_refused(client) -> None:
    r = await post(client, [good(i) for i in range(1001)])
    assert r.status_code == 400 and r.json()["error"]["error_subcode"] == SUBCODE_TOO_MANY


async def test_wrong_token_is_190(client, fake) -> None:
    fake.tokens["1234"] = "right"
    r = await post(client, [good()])
    assert r.status_code == 400 and r.json()["error"]["code"] == 190


async def test_scripted_faults_then_success(client, fake) -> None:
    fake.script[:] = ["http500", "throttle17", "transient2", "token190", "ok"]
    statuses = [(await post(client, [good()])).status_code for _ in range(5)]
    assert statuses == [500, 429, 500, 400, 200]
    assert len(fake.events()) == 1


async def test_fault_rate_and_sandbox_endpoints(client, fake) -> None:
    r = await client.post("/_sandbox/faults", json={"rate": 1.0, "kinds": ["http503"]})
    assert r.status_code == 200
    assert (await post(client, [good()])).status_code == 503
    r = await client.post("/_sandbox/faults", json={"rate": 0})
    assert (await post(client, [good(1)])).status_code == 200
    assert (await post(client, [good(1)])).status_code == 200
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["accepted_events"] == 2 and stats["unique_events"] == 1
    assert stats["duplicates"] == 1
    assert (await client.get("/_sandbox/events")).json()["count"] == 2
    assert (await client.post("/_sandbox/faults", json={"script": ["nope"]})).status_code == 400
    await client.post("/_sandbox/reset")
    assert (await client.get("/_sandbox/events")).json()["count"] == 0
