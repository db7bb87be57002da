"""One hot HTTP route served as plain ASGI, ahead of FastAPI's routing and middleware.

A service's traffic is often nearly all one route (ad clicks on the redirect,
Telegram updates on the bot gateway) whose handler needs nothing from
FastAPI's per-request machinery, which then costs as much CPU as the work
itself. `install_fast_route` answers that route directly, before the
application's middleware stack, with the same function the documented FastAPI
route calls, and counts and times it in the same HTTP metrics as every other
route (by its template). Requests the fast path does not accept (other methods,
extra segments, a parameter of the wrong shape) go through the application as
usual and get its answers, validation errors included.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from grim.web import http_metrics

Handler = Callable[[Scope, Receive, str], Awaitable[Response]]


class FastRoute:
    def __init__(self, app: ASGIApp, *, service: str, template: str, methods: Collection[str],
                 handler: Handler, accept: Callable[[str], bool]) -> None:
        if not template.endswith("}") or template.count("{") != 1:
            raise ValueError("template must end with its only parameter: /prefix/{name}")
        self.app = app
        self.template = template
        self.prefix = template[:template.index("{")]
        self.methods = frozenset(methods)
        self.handler = handler
        self.accept = accept
        self.requests, self.latency = http_metrics(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        param = self._param(scope) if scope["type"] == "http" else None
        if param is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            response = await self.handler(scope, receive, param)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            method = scope["method"]
            self.requests.labels(self.template, method, str(status)).inc()
            self.latency.labels(self.template, method).observe(time.perf_counter() - started)

    def _param(self, scope: Scope) -> str | None:
        if scope["method"] not in self.methods:
            return None
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if not path.startswith(self.prefix):
            return None
        param = path[len(self.prefix):]
        return param if param and "/" not in param and self.accept(param) else None


def install_fast_route(app: FastAPI, service: str, template: str, methods: Collection[str],
                       handler: Handler, accept: Callable[[str], bool] = bool) -> None:
    """Put the fast route in front of `app`'s middleware stack (built on first request)."""
    build = app.build_middleware_stack

    def build_with_fast_route() -> ASGIApp:
        return FastRoute(build(), service=service, template=template, methods=methods,
                         handler=handler, accept=accept)

    app.build_middleware_stack = build_with_fast_route  # type: ignore[method-assign]
