"""The traffic simulator: plays a population of visitors against the public HTTP surfaces only.

Ad clicks on /go/<slug> (with the bridge page's cookie beacon), Telegram webhook
updates signed with each bot's secret, and the buyer's side of the sandbox PIX
gateway (pay, and for some a refund by the seller). It reads what the bot sent
from the fake Telegram, like a person reading the chat. It returns the ground
truth: who clicked (and with which identifiers), who paid, what was refunded.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from grim.demo.personas import Kind, Persona, build_population
from grim.demo.seed import DemoSeller
from grim.demo.truth import ClickTruth, GroundTruth, JourneyTruth

_BRIDGE = re.compile(r"var GRIM = (\{.*?\});\n", re.DOTALL)
_SANDBOX_CHARGE = re.compile(r"sbx[0-9a-f]{22}")


class _NoCookies(DefaultCookiePolicy):
    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


@dataclass(frozen=True)
class Endpoints:
    redirect: str
    bot_gateway: str
    telegram: str
    sandbox: str


class Simulator:
    def __init__(self, endpoints: Endpoints, seller: DemoSeller, *, http: httpx.AsyncClient,
                 progress: Callable[[str], None] = lambda _stage: None,
                 wait_timeout: float = 30.0) -> None:
        self.ep = endpoints
        self.seller = seller
        self.http = http
        # Each visitor is a different browser: the shared client must never replay one
        # visitor's cookies (e.g. a generated _fbc) on another's click.
        self.http.cookies = CookieJar(policy=_NoCookies())  # type: ignore[assignment]
        self.progress = progress
        self.wait_timeout = wait_timeout
        self._update_ids: dict[int, int] = {}
        self._nonce = int(time.time())

    async def run(self, count: int, *, seed: int = 7, rate: float = 20.0,
                  concurrency: int = 40, nonce: int | None = None,
                  only: Kind | None = None) -> GroundTruth:
        """Play `count` funnels, starting `rate` per second; deterministic given seed+nonce."""
        self._nonce = nonce if nonce is not None else self._nonce
        people = build_population(count, seed, self._nonce, int(time.time() * 1000), only)
        gate = asyncio.Semaphore(concurrency)
        journeys = [JourneyTruth(p) for p in people]

        async def play(j: JourneyTruth, delay: float) -> None:
            await asyncio.sleep(delay)
            async with gate:
                try:
                    await self._journey(j)
                except (httpx.HTTPError, TimeoutError, LookupError, ValueError) as exc:
                    j.error = f"{type(exc).__name__}: {exc}"
                self.progress("done")

        await asyncio.gather(*(play(j, i / rate) for i, j in enumerate(journeys)))
        return GroundTruth(journeys)

    async def _journey(self, j: JourneyTruth) -> None:
        p = j.persona
        fbp_cookie, fbc_cookie = p.fbp_cookie, p.fbc_cookie
        for _ in range(p.clicks):
            click, fbp_cookie, fbc_cookie = await self._click(p, fbp_cookie, fbc_cookie)
            j.clicks.append(click)
            self.progress("click")
        if not p.starts:
            return
        if j.clicks:
            last = j.clicks[-1]
            bot = self.seller.bot_by_username(last.bot_username)
            j.started_token = last.token
        else:
            bot = self.seller.bots[p.index % len(self.seller.bots)]
        j.bot_id = bot.id
        text = f"/start {j.started_token}" if j.started_token else "/start"
        await self._update(bot.id, bot.webhook_secret, self._message(p, text),
                           duplicate=p.duplicate_update)
        self.progress("start")
        offer = await self._wait_message(bot.id, p.user_id, _offer_of)
        if p.repeat_start:
            await self._update(bot.id, bot.webhook_secret, self._message(p, text))
        if not p.charges:
            return
        product_id = offer[min(p.product_index, len(offer) - 1)]
        callback = self._callback(p, product_id)
        await self._update(bot.id, bot.webhook_secret, callback, duplicate=p.duplicate_update)
        if p.double_tap:
            await self._update(bot.id, bot.webhook_secret, self._callback(p, product_id))

        async def tap_again() -> None:
            # "Could not generate the PIX, try again": a buyer taps the same button again.
            await self._update(bot.id, bot.webhook_secret, self._callback(p, product_id))

        charge_id = await self._wait_message(bot.id, p.user_id, _sandbox_charge_of,
                                             again=tap_again)
        charge = (await self._sandbox("GET", f"/v1/charges/{charge_id}", auth=True)).json()
        j.payment_id, j.amount_cents = charge["external_id"], charge["amount_cents"]
        j.product_id = product_id
        self.progress("pix")
        if p.pays:
            await self._pay(j, charge_id)

    async def _click(self, p: Persona, fbp: str | None, fbc: str | None
                     ) -> tuple[ClickTruth, str | None, str | None]:
        sent_fbp = fbp
        query = dict(p.utm)
        if p.fbclid:
            query["fbclid"] = p.fbclid
        cookies = "; ".join(f"{k}={v}" for k, v in (("_fbp", fbp), ("_fbc", fbc)) if v)
        headers = {"User-Agent": p.user_agent, "X-Forwarded-For": p.ip,
                   "Accept-Language": "pt-BR,pt;q=0.9"}
        if cookies:
            headers["Cookie"] = cookies
        url = f"{self.ep.redirect}/go/{self.seller.pool_slug}"
        response = await self._retrying("GET", f"{url}?{urlencode(query)}" if query else url,
                                        headers=headers)
        found = _BRIDGE.search(response.text)
        if not found:
            raise ValueError(f"no bridge data in the /go answer ({response.status_code})")
        data = orjson.loads(found.group(1))
        jar = SimpleCookie()
        for header in response.headers.get_list("set-cookie"):
            jar.load(header)
        click_fbc = fbc if fbc else (jar["_fbc"].value if "_fbc" in jar else None)
        fbc = click_fbc
        reported_fbp = reported_fbc = None
        crawler = p.kind == "crawler"
        if p.beacon and not crawler:
            # What the Pixel leaves in the browser: it creates _fbp when there is none.
            fbp = fbp or f"fb.1.{int(time.time() * 1000)}.{1_000_000_000 + p.user_id % 10**9}"
            reported_fbp, reported_fbc = fbp, fbc
            await self._retrying(
                "POST", self.ep.redirect + data["beaconUrl"], content=orjson.dumps(
                    {"tracking_token": data["token"], "fbp": fbp, "fbc": fbc}),
                headers={"User-Agent": p.user_agent, "X-Forwarded-For": p.ip,
                         "Content-Type": "text/plain;charset=UTF-8"})
        username = data["telegramUrl"].split("t.me/", 1)[1].split("?", 1)[0]
        click = ClickTruth(
            token=data["token"], pageview_event_id=data["eventId"], bot_username=username,
            crawler=crawler, ip=p.ip, user_agent=p.user_agent,
            fbc=reported_fbc or click_fbc, fbp=reported_fbp or sent_fbp)
        return click, fbp, fbc

    def _next_update(self, bot_id: int) -> int:
        # Unique across runs on the same bots: Telegram's update ids only grow.
        current = self._update_ids.get(bot_id, (self._nonce % 100_000) * 10_000)
        self._update_ids[bot_id] = current + 1
        return current + 1

    def _user(self, p: Persona) -> dict[str, Any]:
        return {"id": p.user_id, "is_bot": False, "first_name": p.first_name,
                "language_code": "pt-br"}

    def _message(self, p: Persona, text: str) -> dict[str, Any]:
        command = text.split(" ", 1)[0]
        return {"message": {
            "message_id": 1000 + p.index, "from": self._user(p),
            "chat": {"id": p.user_id, "first_name": p.first_name, "type": "private"},
            "date": int(time.time()), "text": text,
            "entities": [{"offset": 0, "length": len(command), "type": "bot_command"}]}}

    def _callback(self, p: Persona, product_id: int) -> dict[str, Any]:
        return {"callback_query": {
            "id": f"{p.user_id}{int(time.time() * 1000) % 10**6}", "from": self._user(p),
            "message": {"message_id": 2000 + p.index, "date": int(time.time()),
                        "chat": {"id": p.user_id, "type": "private"}, "text": "Escolha"},
            "chat_instance": str(-p.user_id), "data": f"pix:{product_id}"}}

    async def _update(self, bot_id: int, secret: str, body: dict[str, Any], *,
                      duplicate: bool = False) -> None:
        raw = orjson.dumps({"update_id": self._next_update(bot_id), **body})
        for _ in range(2 if duplicate else 1):
            for attempt in range(20):
                # Telegram retries a non-2xx answer; so do we (a restarting gateway).
                try:
                    response = await self.http.post(
                        f"{self.ep.bot_gateway}/webhook/telegram/{bot_id}", content=raw,
                        headers={"X-Telegram-Bot-Api-Secret-Token": secret,
                                 "Content-Type": "application/json"})
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(min(0.25 * 2 ** attempt, 2))
            else:
                raise TimeoutError(f"the bot gateway never accepted update for bot {bot_id}")

    async def _retrying(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A visitor reloads a page that failed to load (a restarting redirect)."""
        for attempt in range(20):
            try:
                response = await self.http.request(method, url, **kwargs)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.25 * 2 ** attempt, 2))
        raise TimeoutError(f"{method} {url} kept failing")

    async def _wait_message(self, bot_id: int, chat_id: int,
                            pick: Callable[[list[dict[str, Any]]], Any],
                            again: Callable[[], Awaitable[None]] | None = None,
                            every: float = 10.0) -> Any:
        deadline = time.monotonic() + self.wait_timeout
        next_try = time.monotonic() + every
        while time.monotonic() < deadline:
            if again is not None and time.monotonic() > next_try:
                next_try = time.monotonic() + every
                await again()
            try:
                calls = (await self.http.get(f"{self.ep.telegram}/_sandbox/calls",
                                             params={"chat_id": chat_id})).json()
            except httpx.TransportError:
                calls = []
            found = pick([c for c in calls if c["bot_id"] == bot_id])
            if found:
                return found
            await asyncio.sleep(0.2)
        raise TimeoutError(f"bot {bot_id} sent nothing expected to chat {chat_id}")

    async def _sandbox(self, method: str, path: str, *, auth: bool = False,
                       json: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.seller.sandbox_api_key}"} if auth else {}
        for attempt in range(10):
            try:
                response = await self.http.request(method, self.ep.sandbox + path,
                                                   headers=headers, json=json)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.25 * 2 ** attempt, 2))
        raise TimeoutError(f"sandbox gateway unavailable for {path}")

    async def _pay(self, j: JourneyTruth, charge_id: str) -> None:
        p = j.persona
        payer = {"name": f"{p.first_name} Silva"}
        if p.email:
            payer["email"] = p.email
        await self._sandbox("POST", f"/v1/charges/{charge_id}/simulate-payment",
                            json={"payer": payer})
        j.paid = True
        self.progress("paid")
        if p.kind == "refunded":
            await self._sandbox("POST", f"/v1/charges/{charge_id}/refund", auth=True)
            j.refunded = True
        if p.duplicate_webhook:
            # A gateway re-sends; after a refund this is the "paid" news arriving late.
            await self._sandbox("POST", f"/v1/charges/{charge_id}/resend-webhook")


def _offer_of(calls: list[dict[str, Any]]) -> list[int] | None:
    for call in calls:
        markup = call["params"].get("reply_markup")
        if isinstance(markup, str):
            markup = orjson.loads(markup)
        rows = (markup or {}).get("inline_keyboard") or []
        ids = [int(b["callback_data"].split(":", 1)[1]) for row in rows for b in row
               if str(b.get("callback_data", "")).startswith("pix:")]
        if ids:
            return ids
    return None


def _sandbox_charge_of(calls: list[dict[str, Any]]) -> str | None:
    for call in calls:
        found = _SANDBOX_CHARGE.search(str(call["params"].get("text") or ""))
        if found:
            return found.group(0)
    return None
