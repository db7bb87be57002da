"""A fake Telegram Bot API server for tests and the local demo.

It checks what the real API checks (method names, the token's shape, chat_id,
text/caption lengths after entity parsing, parse_mode, reply_markup and its
buttons, callback_data <= 64 bytes, copy_text <= 256, webhook URL, port and
secret rules), answers with the real envelope (`ok`, `result` /
`error_code`, `description`, `parameters.retry_after`), records every call, and
fails on demand with 429, 5xx or 403 "bot was blocked by the user".

Control API for out-of-process use: GET /_sandbox/calls, POST /_sandbox/faults,
POST /_sandbox/blocked, POST /_sandbox/reset.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from grim.sandbox.telegram_rules import (
    ANSWER_LIMIT,
    CAPTION_LIMIT,
    SECRET,
    TEXT_LIMIT,
    TOKEN,
    UPDATE_TYPES,
    WEBHOOK_PORTS,
    BadRequest,
    chat_id_param,
    check_markup,
    check_parse_mode,
    int_param,
    json_param,
    user_length,
)


@dataclass
class Call:
    bot_id: int
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass
class Fault:
    """Fail the next `count` calls matching method/chat with `status`."""

    status: int
    method: str | None = None
    chat_id: int | None = None
    count: int = 1
    retry_after: int = 1


class FakeTelegram:
    def __init__(self, allow_http_webhook: bool = False) -> None:
        self.allow_http_webhook = allow_http_webhook
        self.calls: list[Call] = []
        self.refused: list[tuple[Call, int, str]] = []
        self.faults: list[Fault] = []
        self.blocked_chats: set[int] = set()
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._message_ids = itertools.count(1)
        self.app = self._build()

    def reset(self) -> None:
        self.calls.clear()
        self.refused.clear()
        self.faults.clear()
        self.blocked_chats.clear()
        self.webhooks.clear()

    def fail(self, status: int, *, method: str | None = None, chat_id: int | None = None,
             count: int = 1, retry_after: int = 1) -> None:
        self.faults.append(Fault(status, method, chat_id, count, retry_after))

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if (method is None or c.method == method)
                and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))]

    def _fault_for(self, method: str, chat_id: Any) -> BadRequest | None:
        if isinstance(chat_id, int) and chat_id in self.blocked_chats and method.startswith("send"):
            return BadRequest("Forbidden: bot was blocked by the user", 403)
        for fault in self.faults:
            if fault.count > 0 and fault.method in (None, method) and \
                    fault.chat_id in (None, chat_id):
                fault.count -= 1
                if fault.status == 429:
                    return BadRequest(f"Too Many Requests: retry after {fault.retry_after}",
                                      429, fault.retry_after)
                if fault.status == 403:
                    return BadRequest("Forbidden: bot was blocked by the user", 403)
                return BadRequest("Internal Server Error", fault.status)
        return None

    def _message(self, chat_id: Any, **content: Any) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "private"} if isinstance(chat_id, int) and chat_id > 0 \
            else {"id": chat_id, "type": "supergroup"}
        return {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
                **{k: v for k, v in content.items() if v is not None}}

    # Methods: each validates, then returns the `result`.
    def getMe(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return {"id": bot_id, "is_bot": True, "first_name": "Sandbox",
                "username": f"sandbox{bot_id}_bot", "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    def sendMessage(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = chat_id_param(p)
        mode = check_parse_mode(p)
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("Bad Request: message text is empty")
        if user_length(text, mode) > TEXT_LIMIT:
            raise BadRequest("Bad Request: message is too long")
        check_markup(p)
        return self._message(chat_id, text=text, reply_markup=json_param(p, "reply_markup"))

    def _send_media(self, kind: str, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = chat_id_param(p)
        mode = check_parse_mode(p)
        media = p.get(kind)
        if kind in f:
            data = f[kind]
            if kind == "photo" and not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
                raise BadRequest("Bad Request: IMAGE_PROCESS_FAILED")
        elif not isinstance(media, str) or not media or " " in media:
            raise BadRequest(f"Bad Request: there is no {kind} in the request")
        caption = p.get("caption")
        if caption is not None and user_length(str(caption), mode) > CAPTION_LIMIT:
            raise BadRequest("Bad Request: message caption is too long")
        check_markup(p)
        file_id = f"sandbox-{kind}-{next(self._message_ids)}"
        return self._message(chat_id, caption=caption, **{kind: [{"file_id": file_id}]
                                                          if kind == "photo" else
                                                          {"file_id": file_id}})

    def sendPhoto(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return self._send_media("photo", p, f)

    def sendVideo(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return self._send_media("video", p, f)

    def sendAnimation(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return self._send_media("animation", p, f)

    def answerCallbackQuery(self, bot_id: int, p: dict[str, Any],
                            f: dict[str, bytes]) -> Any:
        if not isinstance(p.get("callback_query_id"), str) or not p["callback_query_id"]:
            raise BadRequest("Bad Request: QUERY_ID_INVALID")
        if len(str(p.get("text") or "")) > ANSWER_LIMIT:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        return True

    def setWebhook(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        url = p.get("url")
        if not isinstance(url, str):
            raise BadRequest("Bad Request: url is empty")
        if url == "":
            self.webhooks.pop(bot_id, None)
            return True
        parts = urlsplit(url)
        if parts.scheme != "https" and not (self.allow_http_webhook and parts.scheme == "http"):
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if port not in WEBHOOK_PORTS and not self.allow_http_webhook:
            raise BadRequest("Bad Request: bad webhook: Webhook can be set up only on ports "
                             "80, 88, 443 or 8443")
        secret = p.get("secret_token")
        if secret is not None and not SECRET.match(str(secret)):
            raise BadRequest("Bad Request: bad webhook: secret token contains unallowed "
                             "characters")
        max_connections = int_param(p, "max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise BadRequest("Bad Request: bad webhook: max_connections must be in 1..100")
        allowed = json_param(p, "allowed_updates")
        if allowed is not None and (not isinstance(allowed, list)
                                    or not set(allowed) <= UPDATE_TYPES):
            raise BadRequest("Bad Request: can't parse allowed_updates")
        self.webhooks[bot_id] = {"url": url, "secret_token": secret,
                                 "max_connections": max_connections,
                                 "allowed_updates": allowed}
        return True

    def getWebhookInfo(self, bot_id: int, p: dict[str, Any],
                       f: dict[str, bytes]) -> Any:
        hook = self.webhooks.get(bot_id)
        info: dict[str, Any] = {"url": hook["url"] if hook else "",
                                "has_custom_certificate": False, "pending_update_count": 0}
        if hook:
            info["max_connections"] = hook["max_connections"]
            if hook["allowed_updates"] is not None:
                info["allowed_updates"] = hook["allowed_updates"]
        return info

    def deleteWebhook(self, bot_id: int, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        self.webhooks.pop(bot_id, None)
        return True

    METHODS = ("getMe", "sendMessage", "sendPhoto", "sendVideo", "sendAnimation",
               "answerCallbackQuery", "setWebhook", "getWebhookInfo", "deleteWebhook")

    async def _params(self, request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, bytes] = {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            body = orjson.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("Bad Request: JSON object expected")
            params.update(body)
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = await value.read()
                else:
                    params[key] = value
        return params, files

    def _build(self) -> FastAPI:
        app = FastAPI(title="Fake Telegram Bot API", docs_url=None, redoc_url=None)

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def bot_api(token: str, method: str, request: Request) -> JSONResponse:
            match = TOKEN.match(token)
            if not match or method not in self.METHODS:
                return _error(BadRequest("Not Found", 404))
            bot_id = int(match.group(1))
            try:
                params, files = await self._params(request)
            except (BadRequest, orjson.JSONDecodeError) as exc:
                return _error(exc if isinstance(exc, BadRequest)
                              else BadRequest("Bad Request: can't parse JSON"))
            call = Call(bot_id, method, params, files)
            chat = params.get("chat_id")
            if isinstance(chat, str) and chat.lstrip("-").isdigit():
                chat = int(chat)
            fault = self._fault_for(method, chat)
            try:
                if fault is not None:
                    raise fault
                result = getattr(self, method)(bot_id, params, files)
            except BadRequest as exc:
                self.refused.append((call, exc.code, exc.description))
                return _error(exc)
            self.calls.append(call)
            return JSONResponse({"ok": True, "result": result})

        @app.get("/_sandbox/calls")
        async def calls(method: str | None = None, chat_id: int | None = None) -> JSONResponse:
            return JSONResponse([{"bot_id": c.bot_id, "method": c.method, "params": c.params,
                                  "files": {k: len(v) for k, v in c.files.items()}}
                                 for c in self.sent(method, chat_id)])

        @app.post("/_sandbox/faults")
        async def faults(request: Request) -> JSONResponse:
            body = orjson.loads(await request.body())
            self.fail(int(body["status"]), method=body.get("method"),
                      chat_id=body.get("chat_id"), count=int(body.get("count", 1)),
                      retry_after=int(body.get("retry_after", 1)))
            return JSONResponse({"ok": True})

        @app.post("/_sandbox/blocked/{chat_id}")
        async def block(chat_id: int) -> JSONResponse:
            self.blocked_chats.add(chat_id)
            return JSONResponse({"ok": True})

        @app.post("/_sandbox/reset")
        async def reset() -> JSONResponse:
            self.reset()
            return JSONResponse({"ok": True})

        return app


def _error(exc: BadRequest) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return JSONResponse(body, status_code=exc.code)


def create_app(allow_http_webhook: bool = False) -> FastAPI:
    fake = FakeTelegram(allow_http_webhook=allow_http_webhook)
    fake.app.state.fake = fake
    return fake.app
