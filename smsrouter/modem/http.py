"""The bridge's own HTTP endpoint: /send for smsrouter's ModemBackend, /health for people.

/send answers only once the modem gave each part its message reference, so a 200 means
the SMS left; 503 says try again later (no network, the modem reopening, a temporary
+CMS ERROR), which the router's outbox does; 422 says it cannot go. Both need the token.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from smsrouter.modem.bridge import Bridge, Refused

#: Longest text /send takes: 255 parts of 67 UTF-16 units, the most a UDH can number.
MAX_TEXT = 255 * 67


def application(bridge: Bridge) -> web.Application:
    """The aiohttp application serving `bridge`."""
    app = web.Application(client_max_size=256 * 1024)
    app["bridge"] = bridge
    app.router.add_post("/send", send)
    app.router.add_get("/health", health)
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def send(request: web.Request) -> web.Response:
    """{id, to, text} -> 200 {references}; 400 naming the field; 403; 503; 422."""
    bridge: Bridge = request.app["bridge"]
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {bridge.config.token}".encode()):
        return _error(403, "Authorization: Bearer <token> is missing or wrong")
    try:
        body: Any = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not JSON ({exc})")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    for name in ("id", "to", "text"):
        if not isinstance(body.get(name), str) or (name != "text" and not body[name]):
            return _error(400, f"{name} is required, as a string"
                          + (" (it may be empty)" if name == "text" else ""))
    if len(body["text"]) > MAX_TEXT:
        return _error(400, f"text is longer than {MAX_TEXT} characters")
    try:
        references = await bridge.send(body["id"], body["to"], body["text"])
    except Refused as exc:
        return _error(503 if exc.temporary else 422, exc.reason)
    return web.json_response({"references": references})


async def health(request: web.Request) -> web.Response:
    """The modem's state, signal and registration, and what waits in the spool."""
    bridge: Bridge = request.app["bridge"]
    state = bridge.health.as_json(bridge.spool)
    return web.json_response(state, status=200 if state["modem"] == "ready" else 503)
