from datetime import UTC, datetime, timedelta

from grim_dispatcher.payload import (
    AGE_MARGIN,
    MAX_AGE,
    Built,
    Refusal,
    TimeWindow,
    build_event,
    chunks,
    order_for_sending,
)
from grim_schemas.events import ConversionRequested, ConversionUserData

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.at(NOW)
BROWSER = ConversionUserData(client_user_agent="Mozilla/5.0", client_ip_address="203.0.113.7",
                             fbc="fb.1.1700000000000.abc", em="a@b.co")


def conv(name: str = "Purchase", when: datetime = NOW - timedelta(minutes=5), **kw) -> \
        ConversionRequested:
    data = {"event_name": name, "event_time": when, "pixel_id": "123", "producer": "t",
                "event_id": f"{name.lower()}_1", "event_source_url": "https://x.test/go/a",
                "user_data": BROWSER, "custom_data": {"value": 49.9, "currency": "BRL",
                                                "order_id": "p1"}}
    data.update(kw)
    return ConversionRequested(**data)


def test_purchase_payload() -> None:
    built = build_event(conv(), pixel_source="website", window=WINDOW)
    assert isinstance(built, Built)
    e = built.event
    assert e["event_name"] == "Purchase" and e["event_id"] == "purchase_1"
    assert e["event_time"] == int((NOW - timedelta(minutes=5)).timestamp())
    assert e["action_source"] == "website"
    assert e["event_source_url"] == "https://x.test/go/a"
    assert e["custom_data"] == {"value": 49.9, "currency": "BRL", "order_id": "p1"}
    assert e["user_data"]["client_user_agent"] == "Mozilla/5.0"
    assert len(e["user_data"]["em"]) == 64


def test_too_old_is_refused_before_sending() -> None:
    out = build_event(conv(when=NOW - timedelta(days=7, seconds=1)), pixel_source="website",
                      window=WINDOW)
    assert isinstance(out, Refusal) and out.kind == "too_old" and "too old" in out.reason


def test_the_age_limit_is_exact_to_the_microsecond() -> None:
    edge = NOW - MAX_AGE + AGE_MARGIN
    at_edge = build_event(conv(when=edge), pixel_source="website", window=WINDOW)
    assert isinstance(at_edge, Built) and at_edge.event["event_time"] == int(edge.timestamp())
    beyond = build_event(conv(when=edge - timedelta(microseconds=1)), pixel_source="website",
                         window=WINDOW)
    assert isinstance(beyond, Refusal) and beyond.kind == "too_old"


def test_event_time_without_offset_is_refused_not_guessed() -> None:
    naive = build_event(conv(when=NOW.replace(tzinfo=None) - timedelta(minutes=5)),
                        pixel_source="website", window=WINDOW)
    assert isinstance(naive, Refusal) and naive.kind == "no_timezone"


def test_slightly_future_is_clamped_far_future_refused() -> None:
    near = build_event(conv(when=NOW + timedelta(minutes=5)), pixel_source="website", window=WINDOW)
    assert isinstance(near, Built) and near.clamped
    assert near.event["event_time"] == int(NOW.timestamp())
    tiny = build_event(conv(when=NOW + timedelta(seconds=2)), pixel_source="website", window=WINDOW)
    assert isinstance(tiny, Built) and not tiny.clamped
    assert tiny.event["event_time"] == int(NOW.timestamp())
    far = build_event(conv(when=NOW + timedelta(days=2)), pixel_source="website", window=WINDOW)
    assert isinstance(far, Refusal) and far.kind == "future"


def test_purchase_without_value_is_refused() -> None:
    out = build_event(conv(custom_data={"currency": "BRL"}), pixel_source="website", window=WINDOW)
    assert isinstance(out, Refusal) and out.kind == "missing_value"


def test_pageview_is_always_website_others_follow_the_pixel() -> None:
    pv = build_event(conv("PageView", custom_data={}), pixel_source="chat", window=WINDOW)
    assert isinstance(pv, Built) and pv.event["action_source"] == "website"
    ic = build_event(conv("InitiateCheckout"), pixel_source="chat", window=WINDOW)
    assert isinstance(ic, Built) and ic.event["action_source"] == "chat"


def test_website_without_browser_context_falls_back() -> None:
    organic = ConversionUserData(external_id="u1", em="a@b.co")
    p = build_event(conv(user_data=organic), pixel_source="website", window=WINDOW)
    assert isinstance(p, Built) and p.fallback_source
    assert p.event["action_source"] == "system_generated"
    v = build_event(conv("ViewContent", user_data=organic), pixel_source="website", window=WINDOW)
    assert isinstance(v, Built) and v.event["action_source"] == "chat"


def test_purchase_goes_first_and_order_is_stable() -> None:
    names = ["PageView", "Purchase", "ViewContent", "Purchase", "InitiateCheckout", "PageView"]
    items = list(enumerate(names))
    ordered = order_for_sending(items, lambda i: i[1])
    assert [n for _, n in ordered] == ["Purchase", "Purchase", "InitiateCheckout",
                                       "ViewContent", "PageView", "PageView"]
    assert [i for i, n in ordered if n == "Purchase"] == [1, 3]


def test_chunks_of_at_most_1000() -> None:
    parts = chunks(list(range(2500)), 1000)
    assert [len(p) for p in parts] == [1000, 1000, 500]
    assert [x for p in parts for x in p] == list(range(2500))
