"""One hot HTTP route served as plain ASGI, ahead of FastAPI's routing and injection.

A service's traffic is often nearly all one route (ad clicks on the redirect,
Telegram updates on the bot gateway) whose handler needs nothing from
FastAPI's per-request machinery, which then costs as much CPU as the work
itself. `install_fast_route` answers that route directly with the same
function the documented FastAPI route calls, inside the HTTP metrics
middleware (so it is still counted and timed by its route template). Requests
the fast path does not accept (other methods, extra segments, a parameter of
the wrong shape) go through the application as usual and get its answers,
validation errors included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Scope, Receive, str], Awaitable[Response]]


@dataclass(frozen=True)
class RouteLabel:
    path: str


class FastRoute:
    def __init__(self, app: ASGIApp, *, template: str, methods: Collection[str],
                 handler: Handler, accept: Callable[[str], bool]) -> None:
        if not template.endswith("}") or template.count("{") != 1:
            raise ValueError("template must end with its only parameter: /prefix/{name}")
        self.app = app
        self.template = template
        self.prefix = template[:template.index("{")]
        self.methods = frozenset(methods)
        self.handler = handler
        self.accept = accept
        # What the metrics middleware reads from scope["route"]: the template.
        self._label = RouteLabel(template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        param = self._param(scope) if scope["type"] == "http" else None
        if param is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._label
        response = await self.handler(scope, receive, param)
        await response(scope, receive, send)

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


def install_fast_route(app: FastAPI, template: str, methods: Collection[str], handler: Handler,
                       accept: Callable[[str], bool] = bool) -> None:
    """Call before `install_http_metrics`, so that the metrics middleware wraps it."""
    app.add_middleware(FastRoute, template=template, methods=methods, handler=handler,
                       accept=accept)
