"""Gateways' webhooks, served ahead of Django's middleware.

Nearly all of an SMS service's traffic is webhooks: one request per inbound SMS and one per
delivery report. Through Django's handler each would cross every middleware (sessions,
CSRF, authentication, messages: none of which a gateway uses) and several trips to worker
threads, which together cost more than storing and routing the message. So the ASGI root
hands requests for the two webhook views straight to them: the same URLs (resolved by the
project's URLconf, wherever it includes `smsrouter.urls`), the same views and refusals.
The web UI and the admin stay ordinary Django. `SMSROUTER_WEBHOOK_FAST_PATH = False` puts
webhooks back through the middleware, for a project whose middleware they need.

Django's request_started and request_finished signals are not sent for these requests;
the database work of webhooks runs in one thread whose connection outlives requests.
"""

import io
import logging
from typing import Any

from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, ResolverMatch, resolve, set_script_prefix

from smsrouter import conf, views

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
WEBHOOK_VIEWS = (views.inbound, views.status)


class WebhookFastPath:
    """The ASGI app in front of Django's: webhooks to their views, the rest to Django."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        match = _webhook(scope)
        if match is None:
            await self.django_app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        set_script_prefix(get_script_prefix(scope))
        response = await _serve(scope, bytes(body), match)
        await self.django_app.send_response(response, send)


def _webhook(scope: Scope) -> ResolverMatch | None:
    if not conf.get("SMSROUTER_WEBHOOK_FAST_PATH"):
        return None
    path = scope["path"].removeprefix(get_script_prefix(scope))
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match if match.func in WEBHOOK_VIEWS else None


async def _serve(scope: Scope, body: bytes, match: ResolverMatch) -> HttpResponse:
    """The view's response, or the 400 or 500 Django's handler would have given."""
    try:
        request = ASGIRequest(scope, io.BytesIO(body))
        request.resolver_match = match
        request.get_host()  # ALLOWED_HOSTS, as for any Django request
        return await match.func(request, *match.args, **match.kwargs)
    except DisallowedHost as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except (SuspiciousOperation, UnicodeDecodeError) as exc:
        return JsonResponse({"error": f"Bad request: {exc}"}, status=400)
    except Exception:
        logger.exception("webhook %s failed", scope["path"])
        return JsonResponse({"error": "The webhook failed; the server log says why."}, status=500)
