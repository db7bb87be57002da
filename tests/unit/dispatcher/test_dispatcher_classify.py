import httpx
import pytest
from grim_dispatcher.classify import Verdict, classify_exception, classify_response


def err(code: int, **extra: object) -> dict:
    return {"error": {"message": "x", "type": "OAuthException", "code": code, **extra}}


def test_accepted() -> None:
    out = classify_response(200, {"events_received": 3, "messages": [], "fbtrace_id": "T"})
    assert out.verdict is Verdict.ACCEPTED
    assert out.events_received == 3 and out.fbtrace_id == "T"


@pytest.mark.parametrize("code", [1, 2, 4, 17, 341, 368, 613])
def test_transient_codes(code: int) -> None:
    assert classify_response(400, err(code)).verdict is Verdict.TRANSIENT


def test_throttling_is_flagged() -> None:
    assert classify_response(429, err(17)).throttled
    assert classify_response(400, err(613)).throttled
    assert not classify_response(500, err(2)).throttled


def test_is_transient_flag_wins() -> None:
    assert classify_response(400, err(100, is_transient=True)).verdict is Verdict.TRANSIENT


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_without_json_are_transient(status: int) -> None:
    assert classify_response(status, None).verdict is Verdict.TRANSIENT


def test_2xx_without_events_received_is_not_taken_as_accepted() -> None:
    assert classify_response(200, {"messages": []}).verdict is Verdict.TRANSIENT


def test_invalid_parameter_means_isolate_the_bad_event() -> None:
    out = classify_response(400, err(100, error_subcode=2804003, error_user_msg="too old",
                                     fbtrace_id="F"))
    assert out.verdict is Verdict.INVALID_EVENTS
    assert (out.code, out.subcode, out.fbtrace_id) == (100, 2804003, "F")
    assert "too old" in out.reason and "2804003" in out.reason


def test_token_and_permissions_are_permanent_for_the_pixel() -> None:
    assert classify_response(400, err(190, error_subcode=463)).verdict is Verdict.INVALID_TOKEN
    assert classify_response(403, err(10)).verdict is Verdict.FORBIDDEN
    assert classify_response(403, err(200)).verdict is Verdict.FORBIDDEN
    assert classify_response(403, err(299)).verdict is Verdict.FORBIDDEN


def test_network_errors_are_transient() -> None:
    assert classify_exception(httpx.ReadTimeout("slow")).verdict is Verdict.TRANSIENT
    assert classify_exception(httpx.ConnectError("refused")).verdict is Verdict.TRANSIENT
