import ipaddress

import pytest

from grim_redirect.capture import (
    client_ip,
    cookie_safe,
    parse_cookie_header,
    parse_query,
    resolve_fbc,
    resolve_fbp,
)

NOW = 1763800000123


def test_fbclid_is_kept_verbatim_after_one_url_decoding():
    raw = "IwAR0aBc-_XyZ" + "Q" * 300
    params = parse_query(f"fbclid={raw}&utm_source=fb")
    assert params.fbclid == raw
    # %2B decodes once to '+', and a literal '+' means space per form encoding; nothing else.
    assert parse_query("fbclid=Ab%2Bc%253D").fbclid == "Ab+c%3D"
    assert parse_query("fbclid=MiXeD.CaSe").fbclid == "MiXeD.CaSe"


def test_utm_named_and_extra_campaign_params():
    params = parse_query(
        "utm_source=facebook&utm_medium=cpc&utm_campaign=Black%20Friday&utm_content=ad1"
        "&utm_term=&grim=abc&src=ig&sck=x1&gclid=g1&fbclid=F"
    )
    assert params.utm == {"utm_source": "facebook", "utm_medium": "cpc",
                          "utm_campaign": "Black Friday", "utm_content": "ad1", "utm_term": ""}
    assert params.campaign_params == {"grim": "abc", "src": "ig", "sck": "x1", "gclid": "g1"}


def test_first_value_wins_and_extras_are_bounded():
    assert parse_query("utm_source=a&utm_source=b").utm == {"utm_source": "a"}
    many = "&".join(f"p{i}={i}" for i in range(100))
    assert len(parse_query(many).campaign_params) == 20
    assert parse_query("x=" + "v" * 5000).campaign_params == {}


def test_cookie_header_is_split_without_unquoting():
    header = '_fbp=fb.1.1700000000000.123456789; _fbc="fb.1.17.Ab"; other=1; _fbp=second'
    cookies = parse_cookie_header(header)
    assert cookies["_fbp"] == "fb.1.1700000000000.123456789"
    assert cookies["_fbc"] == '"fb.1.17.Ab"'
    assert parse_cookie_header(None) == {}


@pytest.mark.parametrize("cookie", [
    "fb.1.1700000000000.IwAR0aBc",
    "fb.1.1700000000000.IwAR0aBc.AQ",            # ParamBuilder's fifth part
    "fb.2.1700000000000.IwAR0aBc.AQYBAAEA",
])
def test_fbc_cookie_with_four_or_five_parts_is_kept_byte_for_byte(cookie):
    assert resolve_fbc(cookie, "OTHER", NOW).value == cookie
    assert resolve_fbc(cookie, "OTHER", NOW).origin == "cookie"


def test_fbc_is_generated_from_fbclid_when_no_cookie():
    fbc = resolve_fbc(None, "IwAR-xY_z", NOW)
    assert fbc.value == f"fb.1.{NOW}.IwAR-xY_z" and fbc.origin == "generated"


@pytest.mark.parametrize("bad", ["garbage", "fb.1.2", "fb.1.2.3.4.5", "", "fb.1.x.abc"])
def test_malformed_fbc_cookie_is_not_forwarded(bad):
    assert resolve_fbc(bad, "F", NOW) == resolve_fbc(None, "F", NOW)
    assert resolve_fbc(bad, None, NOW).origin == "none"


def test_fbp_validation():
    assert resolve_fbp("fb.1.1700000000000.987654321") == "fb.1.1700000000000.987654321"
    assert resolve_fbp("fb.1.1700000000000.987654321.Ag") == "fb.1.1700000000000.987654321.Ag"
    assert resolve_fbp("<script>") is None
    assert resolve_fbp(None) is None


def test_cookie_safe():
    assert cookie_safe("fb.1.17.IwAR_-x")
    assert not cookie_safe("fb.1.17.a;b") and not cookie_safe("a b") and not cookie_safe('"')


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


def test_forwarded_for_ignored_from_untrusted_peer():
    assert client_ip("203.0.113.9", "1.2.3.4", TRUSTED) == "203.0.113.9"


def test_forwarded_for_from_trusted_proxy_chain():
    assert client_ip("10.0.0.2", "198.51.100.7, 10.0.0.5", TRUSTED) == "198.51.100.7"
    # A visitor-supplied hop before the real client is not believed.
    assert client_ip("10.0.0.2", "6.6.6.6, 198.51.100.7", TRUSTED) == "198.51.100.7"


def test_forwarded_for_garbage_stops_at_last_trusted_hop():
    assert client_ip("10.0.0.2", "nonsense", TRUSTED) == "10.0.0.2"
    assert client_ip("10.0.0.2", "", TRUSTED) == "10.0.0.2"


def test_ipv6_and_ports():
    assert client_ip("::1", "[2001:db8::1]:443", TRUSTED) == "2001:db8::1"
    assert client_ip("::1", "192.0.2.1:5555", TRUSTED) == "192.0.2.1"
    assert client_ip("2001:db8::5", None, TRUSTED) == "2001:db8::5"
