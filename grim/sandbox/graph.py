"""A strict fake of the Graph API's Conversions API endpoint, with fault injection.

`POST /{version}/{pixel_id}/events` takes what Meta takes: a JSON body, or form
fields (the official SDK sends `data` as a JSON string in a form field), with
`access_token` in the body or the query string. Like Meta, one invalid event
rejects the whole request (code 100 + a 2804xxx subcode + `error_user_msg`).

Subcodes: 2804001 (malformed fbc/fbp), 2804003 (event_time older than 7 days)
and 2804009 (Purchase without value/currency) follow DESIGN.md's gathered
facts. The others below are stand-ins within the same family, for refusals
Meta also makes but whose exact subcode we have not confirmed: a client must
treat every code 100 alike.

Sandbox endpoints (`/_sandbox/...`) read what was accepted and inject faults
by rate or by script; tests in the same process can use `FakeGraph` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

MAX_EVENTS = 1000
MAX_AGE_SECONDS = 7 * 24 * 3600
FUTURE_SKEW_SECONDS = 60

SUBCODE_FBC = 2804001
SUBCODE_TOO_OLD = 2804003
SUBCODE_PURCHASE_VALUE = 2804009
SUBCODE_FUTURE = 2804004
SUBCODE_MISSING = 2804008
SUBCODE_HASHING = 2804019
SUBCODE_ACTION_SOURCE = 2804020
SUBCODE_TOO_MANY = 2804010

ACTION_SOURCES = {"email", "website", "app", "phone_call", "chat", "physical_store",
                  "system_generated", "business_messaging", "other"}
HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db")
PLAIN = ("client_ip_address", "client_user_agent", "fbc", "fbp")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LOOKS_HASHED = re.compile(r"^[0-9a-fA-F]{64}$")
# fb.<subdomain index>.<creation ms>.<fbclid>[.<ParamBuilder suffix>]
_FBC = re.compile(r"^fb\.[0-2]\.\d{10,13}\.[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)?$")
_FBP = re.compile(r"^fb\.[0-2]\.\d{10,13}\.\d+(\.[A-Za-z0-9_\-]+)?$")
_VERSION = re.compile(r"^v\d+\.\d+$")

FAULTS = ("http500", "http503", "timeout", "throttle17", "throttle4", "throttle613",
          "transient2", "token190")


class Refused(Exception):
    def __init__(self, subcode: int | None, title: str, message: str, code: int = 100) -> None:
        super().__init__(message)
        self.code, self.subcode, self.title, self.message = code, subcode, title, message


@dataclass
class FakeGraph:
    """State of the fake: accepted events, request log, fault settings."""

    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("http500", "timeout", "throttle17")
    script: list[str] = field(default_factory=list)
    timeout_seconds: float = 5.0
    # Added to every request that is not a fault: widens the window a crash test can hit.
    latency_seconds: float = 0.0
    # pixel_id -> the only token accepted for it (others get code 190); unset pixels take any.
    tokens: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def reset(self) -> None:
        self.accepted.clear()
        self.requests.clear()
        self.refusals.clear()
        self.script.clear()

    def next_fault(self) -> str | None:
        if self.script:
            step = self.script.pop(0)
            return None if step == "ok" else step
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(self.fault_kinds)
        return None

    def events(self, pixel_id: str | None = None) -> list[dict[str, Any]]:
        return [e for p, e in self.accepted if pixel_id is None or p == pixel_id]

    def accepted_counts(self, pixel_id: str | None = None) -> Counter[tuple[str, str, str]]:
        """How often each (pixel, event_name, event_id) was accepted (Meta keeps one)."""
        return Counter((p, e["event_name"], e["event_id"]) for p, e in self.accepted
                       if pixel_id is None or p == pixel_id)


def graph_error(status: int, code: int, message: str, *, subcode: int | None = None,
                title: str | None = None, user_msg: str | None = None,
                transient: bool = False) -> JSONResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": _trace(),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if title:
        error["error_user_title"] = title
    if user_msg:
        error["error_user_msg"] = user_msg
    return JSONResponse(status_code=status, content={"error": error})


def _trace() -> str:
    return "A" + secrets.token_urlsafe(15)


def validate_event(event: Any, index: int, now: float) -> None:
    """Raise Refused for what Meta refuses in one event of `data`."""
    where = f"data[{index}]"
    if not isinstance(event, dict):
        raise Refused(None, "Invalid event", f"{where} must be an object")
    for required in ("event_name", "event_time", "action_source"):
        if event.get(required) in (None, ""):
            raise Refused(SUBCODE_MISSING, "Missing parameter",
                          f"{where}: the parameter {required} is required")
    event_time = event["event_time"]
    if isinstance(event_time, str) and event_time.isdigit():
        event_time = int(event_time)
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        raise Refused(SUBCODE_MISSING, "Invalid event_time",
                      f"{where}: event_time must be a Unix timestamp in seconds")
    if event_time < now - MAX_AGE_SECONDS:
        raise Refused(SUBCODE_TOO_OLD, "Event Timestamp Too Old",
                      f"{where}: event_time is more than 7 days in the past")
    if event_time > now + FUTURE_SKEW_SECONDS:
        raise Refused(SUBCODE_FUTURE, "Event Timestamp In The Future",
                      f"{where}: event_time is in the future")
    source = event["action_source"]
    if source not in ACTION_SOURCES:
        raise Refused(SUBCODE_ACTION_SOURCE, "Invalid action_source",
                      f"{where}: action_source {source!r} is not one of {sorted(ACTION_SOURCES)}")
    user = event.get("user_data")
    if not isinstance(user, dict) or not user:
        raise Refused(SUBCODE_MISSING, "Missing user_data",
                      f"{where}: user_data with at least one customer parameter is required")
    if source == "website":
        if not user.get("client_user_agent"):
            raise Refused(SUBCODE_MISSING, "Missing client_user_agent",
                          f"{where}: website events require user_data.client_user_agent")
        if not event.get("event_source_url"):
            raise Refused(SUBCODE_MISSING, "Missing event_source_url",
                          f"{where}: website events require event_source_url")
    _validate_user_data(user, where)
    if event["event_name"] == "Purchase":
        custom = event.get("custom_data") or {}
        value, currency = custom.get("value"), custom.get("currency")
        if (not isinstance(value, int | float) or isinstance(value, bool)
                or not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency)):
            raise Refused(SUBCODE_PURCHASE_VALUE, "Purchase needs value and currency",
                          f"{where}: Purchase events require custom_data.value and currency")


def _validate_user_data(user: dict[str, Any], where: str) -> None:
    for name in HASHED:
        if name not in user:
            continue
        values = user[name] if isinstance(user[name], list) else [user[name]]
        for value in values:
            if not isinstance(value, str) or not _SHA256.match(value):
                raise Refused(SUBCODE_HASHING, "Unhashed customer information",
                              f"{where}: user_data.{name} must be a lowercase SHA-256 hex digest")
    external = user.get("external_id")
    for value in external if isinstance(external, list) else [external]:
        if value is not None and (not isinstance(value, str) or not value):
            raise Refused(SUBCODE_MISSING, "Invalid external_id",
                          f"{where}: user_data.external_id must be a non-empty string")
    for name in PLAIN:
        value = user.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or _LOOKS_HASHED.match(value):
            raise Refused(SUBCODE_HASHING, "Hashed parameter that must not be hashed",
                          f"{where}: user_data.{name} must be sent as captured, not hashed")
    if "fbc" in user and not _FBC.match(user["fbc"]):
        raise Refused(SUBCODE_FBC, "Invalid fbc",
                      f"{where}: user_data.fbc {user['fbc']!r} is not fb.<n>.<ms>.<fbclid>")
    if "fbp" in user and not _FBP.match(user["fbp"]):
        raise Refused(SUBCODE_FBC, "Invalid fbp",
                      f"{where}: user_data.fbp {user['fbp']!r} is not fb.<n>.<ms>.<random>")
    if "client_ip_address" in user:
        try:
            ipaddress.ip_address(user["client_ip_address"])
        except ValueError:
            raise Refused(SUBCODE_MISSING, "Invalid client_ip_address",
                          f"{where}: client_ip_address is not an IP address") from None


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        parsed = orjson.loads(body) if body else {}
        if not isinstance(parsed, dict):
            raise Refused(None, "Invalid body", "the JSON body must be an object")
        params.update(parsed)
    elif body:
        params.update({k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True)
                       .items()})
    return params


async def _fault_response(fake: FakeGraph, fault: str) -> Response:
    if fault == "http500":
        return PlainTextResponse("Internal Server Error", status_code=500)
    if fault == "http503":
        return PlainTextResponse("Service Unavailable", status_code=503)
    if fault == "timeout":
        await asyncio.sleep(fake.timeout_seconds)
        return PlainTextResponse("Gateway Timeout", status_code=504)
    if fault.startswith("throttle"):
        code = int(fault.removeprefix("throttle"))
        return graph_error(429, code, f"(#{code}) Application request limit reached",
                           transient=True)
    if fault == "transient2":
        return graph_error(500, 2, "An unexpected error has occurred. Please retry your "
                           "request later.", transient=True)
    if fault == "token190":
        return graph_error(400, 190, "Error validating access token: Session has expired",
                           subcode=463)
    raise ValueError(f"unknown fault {fault!r}")


def create_app(fake: FakeGraph | None = None) -> FastAPI:
    fake = fake or FakeGraph()
    app = FastAPI(title="Fake Graph API (Conversions API)", version="1")
    app.state.fake = fake

    @app.post("/{version}/{pixel_id}/events")
    async def post_events(version: str, pixel_id: str, request: Request) -> Response:
        fake.requests["total"] += 1
        if not _VERSION.match(version) or not pixel_id.isdigit():
            fake.requests["not_found"] += 1
            return graph_error(400, 100, f"Unsupported post request. Object with ID "
                               f"'{pixel_id}' does not exist")
        if fake.latency_seconds:
            await asyncio.sleep(fake.latency_seconds)
        fault = fake.next_fault()
        if fault is not None:
            fake.requests[f"fault:{fault}"] += 1
            return await _fault_response(fake, fault)
        try:
            params = await _params(request)
        except ClientDisconnect:
            fake.requests["client_gone"] += 1
            return PlainTextResponse("client closed the request", status_code=499)
        except (Refused, orjson.JSONDecodeError, UnicodeDecodeError):
            return graph_error(400, 100, "Invalid parameter",
                               user_msg="the request body is not valid JSON or form data")
        token = params.get("access_token")
        if not token:
            return graph_error(400, 104, "An access token is required to request this resource.")
        expected = fake.tokens.get(pixel_id)
        if expected is not None and token != expected:
            fake.requests["token_refused"] += 1
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        data = params.get("data")
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                data = None
        try:
            if not isinstance(data, list) or not data:
                raise Refused(SUBCODE_MISSING, "Missing data",
                              "the parameter data must be a non-empty JSON array of events")
            if len(data) > MAX_EVENTS:
                raise Refused(SUBCODE_TOO_MANY, "Too many events",
                              f"a request holds at most {MAX_EVENTS} events, got {len(data)}")
            now = time.time()
            for index, event in enumerate(data):
                validate_event(event, index, now)
        except Refused as refusal:
            fake.requests["refused"] += 1
            fake.refusals.append({"pixel_id": pixel_id, "subcode": refusal.subcode,
                                  "message": refusal.message})
            return graph_error(400, refusal.code, "Invalid parameter", subcode=refusal.subcode,
                               title=refusal.title, user_msg=refusal.message)
        fake.requests["accepted"] += 1
        fake.accepted.extend((pixel_id, event) for event in data)
        return JSONResponse({"events_received": len(data), "messages": [],
                             "fbtrace_id": _trace()})

    @app.get("/_sandbox/events", tags=["sandbox"])
    async def sandbox_events(pixel_id: str | None = None, limit: int = 1000) -> dict[str, Any]:
        events = fake.events(pixel_id)
        return {"count": len(events), "events": events[-limit:]}

    @app.get("/_sandbox/stats", tags=["sandbox"])
    async def sandbox_stats() -> dict[str, Any]:
        counts = fake.accepted_counts()
        return {"requests": dict(fake.requests), "accepted_events": len(fake.accepted),
                "unique_events": len(counts),
                "duplicates": sum(n - 1 for n in counts.values())}

    @app.post("/_sandbox/faults", tags=["sandbox"])
    async def sandbox_faults(request: Request) -> dict[str, Any]:
        body = orjson.loads(await request.body() or b"{}")
        kinds = tuple(body.get("kinds") or fake.fault_kinds)
        unknown = [k for k in (*kinds, *body.get("script", [])) if k not in (*FAULTS, "ok")]
        if unknown:
            return graph_error(400, 100, f"unknown faults {unknown}; known: {list(FAULTS)}")
        fake.fault_rate = float(body.get("rate", fake.fault_rate))
        fake.fault_kinds = kinds
        fake.script[:] = list(body.get("script", []))
        fake.timeout_seconds = float(body.get("timeout_seconds", fake.timeout_seconds))
        return {"rate": fake.fault_rate, "kinds": list(fake.fault_kinds), "script": fake.script}

    @app.post("/_sandbox/reset", tags=["sandbox"])
    async def sandbox_reset() -> dict[str, str]:
        fake.reset()
        return {"status": "reset"}

    @app.get("/healthz", tags=["sandbox"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running(fake: FakeGraph, port: int | None = None) -> AsyncIterator[str]:
    """Serve `fake` with uvicorn in the current event loop; yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(fake), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def serve(host: str = "127.0.0.1", port: int = 8202, fault_rate: float = 0.0) -> None:
    import uvicorn

    uvicorn.run(create_app(FakeGraph(fault_rate=fault_rate)), host=host, port=port,
                log_level="info")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8202)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args()
    serve(args.host, args.port, args.fault_rate)
