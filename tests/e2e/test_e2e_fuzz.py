"""Fuzzing every HTTP service through its own OpenAPI document (schemathesis): no 5xx and
responses that match the documented schema; plus hand-made bad input on the public
surfaces (forged webhooks, oversized bodies, invalid tokens, script injection)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from grim.demo.system import System, running_system
from tests.support import wait_for

EXAMPLES = 30


@pytest.fixture(scope="module")
async def system(grim_settings, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    run_dir: Path = tmp_path_factory.mktemp("e2e-fuzz") / ".run"
    async with running_system(grim_settings, run_dir) as running:
        yield running


def _fuzz(base_url: str, headers: dict[str, str]) -> list[str]:
    """Run every operation of the service's schema; returns the failures found."""
    raw = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=base_url, headers=headers, timeout=15,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except (AssertionError, ExceptionGroup) as exc:  # how schemathesis reports failures
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    return failures


SERVICES = {
    "redirect": lambda s: (s.settings.redirect_url, {}),
    "bot-gateway": lambda s: (s.settings.bot_gateway_url, {}),
    "payments": lambda s: (s.settings.payments_url, {
        "Authorization": f"Bearer {s.settings.admin_token.get_secret_value()}"}),
    "dispatcher": lambda s: (s.settings.url(s.settings.demo_dispatcher_port), {}),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_schemathesis_finds_no_server_error(system: System, service: str) -> None:
    base_url, headers = SERVICES[service](system)
    failures = await asyncio.to_thread(_fuzz, base_url, headers)
    assert failures == []


async def test_forged_telegram_webhook_is_refused(system: System) -> None:
    bot = system.seller.bots[0]
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start",
                                          "chat": {"id": 1, "type": "private"}}}
    async with httpx.AsyncClient() as http:
        url = f"{system.settings.bot_gateway_url}/webhook/telegram/{bot.id}"
        forged = await http.post(url, json=update, headers={
            "X-Telegram-Bot-Api-Secret-Token": "not-the-secret"})
        missing = await http.post(url, json=update)
        huge = await http.post(url, content=b"{" + b" " * (2 << 20) + b"}", headers={
            "X-Telegram-Bot-Api-Secret-Token": bot.webhook_secret,
            "Content-Type": "application/json"})
    assert forged.status_code == 401 and missing.status_code == 401
    assert huge.status_code == 413
    assert set(forged.json()) == {"error", "detail"}


async def test_forged_gateway_webhook_is_refused(system: System) -> None:
    body = json.dumps({"id": "evt_x", "type": "charge.paid", "data": {"id": "sbx" + "0" * 22}})
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{system.settings.payments_url}/webhooks/sandbox/{system.seller.gateway_account_id}",
            content=body, headers={"Content-Type": "application/json",
                                   "X-Sandbox-Signature": "t=1,v1=" + "0" * 64})
    assert 400 <= response.status_code < 500


async def test_invalid_tokens_and_oversized_beacons_get_a_clear_4xx(system: System) -> None:
    url = f"{system.settings.redirect_url}/api/tracking/cookies"
    async with httpx.AsyncClient() as http:
        bad_token = await http.post(url, content=b'{"tracking_token": "../../etc/passwd"}')
        bad_json = await http.post(url, content=b"{not json")
        huge = await http.post(url, content=b"x" * 100_000)
        delivery = await http.get(f"{system.settings.payments_url}/delivery/%3Cscript%3E")
    assert bad_token.status_code == 422 and bad_json.status_code == 400
    assert huge.status_code == 413
    assert 400 <= delivery.status_code < 500


async def test_script_injection_in_captured_params_is_escaped_on_the_bridge_page(
        system: System) -> None:
    evil = '</script><script>alert(1)</script>"\'<img src=x onerror=alert(2)>\u2028é'
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{system.settings.redirect_url}/go/{system.seller.pool_slug}",
            params={"fbclid": evil, "utm_campaign": evil, "x": evil},
            headers={"User-Agent": evil.encode(), "X-Forwarded-For": "203.0.113.9"})
        unknown = await http.get(f"{system.settings.redirect_url}/go/%3Cscript%3Ealert(1)")
    assert response.status_code == 200
    page = response.text
    assert "<script>alert(1)" not in page and "onerror=alert" not in page
    assert page.count("</script>") == 1  # only the page's own
    assert unknown.status_code == 404 and "<script>alert" not in unknown.text
    found = re.search(r"var GRIM = (\{.*?\});\n", page, re.DOTALL)
    assert found
    token = json.loads(found.group(1))["token"]

    async def stored():  # type: ignore[no-untyped-def]
        return await system.db.fetchrow(
            "SELECT fbclid, utm_campaign, user_agent, campaign_params FROM projector.tokens"
            " WHERE tracking_token = $1 AND clicked_at IS NOT NULL", token)

    row = await wait_for(stored, timeout=60, message="the injected click in the projection")
    # Stored verbatim, escaped only where it is shown.
    assert (row["fbclid"], row["utm_campaign"]) == (evil, evil)
    # Header bytes are ISO-8859-1 to HTTP (and ASGI): the same bytes, byte for byte.
    assert row["user_agent"].encode("latin-1") == evil.encode()
    assert row["campaign_params"]["x"] == evil
