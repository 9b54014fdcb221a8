"""Apps' async HTTP resources under `/res/<app>/<path>` (Hanji's twisted_dynamic_resources).

They are served ahead of Django and its middleware, in the server's loop: a handler may
await slow I/O for as long as it needs without holding a thread. A handler is an
`async def` method of the app named in `App.resources`; it receives a `Request` and returns
a `Response` (or a str, bytes, dict or list, sent as text or JSON).
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from smsrouter.router import App

Scope = dict[str, Any]
logger = logging.getLogger(__name__)


@dataclass
class Request:
    """What a resource handler is given: the parts of the HTTP request it may need,
    already read (the body whole), and the app instance that serves it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    app: App

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    """What a resource handler returns: a dict or list is sent as JSON, a str as UTF-8
    text, bytes as they are. A handler may return the body alone for status 200."""

    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, (Mapping, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


class AppResourceRouter:
    """The ASGI app behind `re_path(r"^res/(?P<app>[\\w-]+)/(?P<path>.*)$", ...)`.

    It serves the app instances that lifespan startup activated (`ResourceLifespan`).
    """

    def __init__(self, apps: Mapping[str, App]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        route = scope["url_route"]["kwargs"]
        app = self.apps.get(route["app"])
        method_name = app.resources.get(route["path"]) if app is not None else None
        if method_name is None:
            known = ", ".join(sorted(self.apps)) or "no app has resources"
            await _respond(send, Response({"error": f"No resource /res/{route['app']}/"
                                           f"{route['path']} (apps: {known})."}, 404))
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = Request(
            method=scope["method"], path=route["path"],
            query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body, app=app,
        )
        try:
            result = await getattr(app, method_name)(request)
        except Exception:
            logger.exception("resource /res/%s/%s failed", route["app"], route["path"])
            result = Response({"error": "The resource failed; the server log says why."}, 500)
        await _respond(send, result if isinstance(result, Response) else Response(result))


async def _respond(send: Any, response: Response) -> None:
    body, content_type = response.encode()
    headers = {"content-type": content_type, "content-length": str(len(body)),
               **{k.lower(): v for k, v in response.headers.items()}}
    await send({"type": "http.response.start", "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": body})
