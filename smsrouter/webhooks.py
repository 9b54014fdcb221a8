"""Gateways' webhooks, served ahead of Django's middleware.

Nearly all of an SMS service's traffic is webhooks: one request per inbound SMS and one per
delivery report. Through Django's handler each would cross every middleware (sessions,
CSRF, authentication, messages: none of which a gateway uses) and several trips to worker
threads, which together cost more than storing and routing the message. So the ASGI root
hands requests for the two webhook views straight to them: the same URLs (resolved by the
project's URLconf, wherever it includes `smsrouter.urls`), the same views and refusals.
The web UI and the admin stay ordinary Django. `SMSROUTER_WEBHOOK_FAST_PATH = False` puts
webhooks back through the middleware, for a project whose middleware they need.

What Django's handler promises still holds here. request_started (with the scope) and
request_finished are sent once per webhook, and their blocking receivers run where
ASGIHandler would run them: in asgiref's thread for thread-sensitive work. That is where
the webhooks' database work runs, so Django's close_old_connections applies CONN_MAX_AGE
and replaces broken connections for the one connection all webhooks share. With Django's
default CONN_MAX_AGE = 0 that connection is therefore closed after every webhook (after
every batch under load) and opened again; bench/webhook_signals.py measures the cost, and
CONN_MAX_AGE = None (or a PostgreSQL pool) avoids it. The signals of concurrent webhooks
make that trip together. got_request_exception is sent, with the request, when a view
raises, for error reporters such as Sentry.

A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with a 413 as soon as its
Content-Length or the bytes received so far say so, without reading the rest: the body is
held in memory, so the limit covers all of it, file parts of a multipart body included.
The limit holds for webhooks with the fast path off as well.
"""

import io
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import (
    DisallowedHost,
    RequestAborted,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, ResolverMatch, resolve, set_script_prefix

from smsrouter import conf, views
from smsrouter.groupcommit import GroupCommit

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WEBHOOK_VIEWS = (views.inbound, views.status)


class WebhookFastPath:
    """The ASGI app in front of Django's: webhooks to their views, the rest to Django."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _webhook(scope)
        if match is None:
            await self.django_app(scope, receive, send)
            return
        try:
            body = await _read_body(scope, receive)
        except RequestAborted:  # the client hung up before the body was in
            return
        except RequestDataTooBig as exc:
            await self.respond(scope, send, lambda refused=exc: _too_big(refused))
            return
        if not conf.get("SMSROUTER_WEBHOOK_FAST_PATH"):
            await self.django_app(scope, _replayed(body, receive), send)
            return
        await self.respond(scope, send, lambda: _serve(scope, body, match))

    async def respond(self, scope: Scope, send: Send, view: Callable[[], Awaitable[HttpResponse]]) -> None:
        """Send the view's response between request_started and request_finished."""
        set_script_prefix(get_script_prefix(scope))
        await _request_started(type(self), scope)
        response = None
        try:
            response = await view()
            response._handler_class = type(self)  # the sender of request_finished
            await self.django_app.send_response(response, send)
        finally:
            await _request_finished(type(self), response)


async def _request_started(sender: type, scope: Scope) -> None:
    await _in_db_thread.submit(partial(signals.request_started.send, sender=sender, scope=scope))


async def _request_finished(sender: type, response: HttpResponse | None) -> None:
    # HttpResponse.close() sends request_finished, as under ASGIHandler; a view cancelled
    # before it answered (a server shutting down) leaves no response to close.
    if response is None:
        await _in_db_thread.submit(partial(signals.request_finished.send, sender=sender))
    else:
        await _in_db_thread.submit(response.close)


def _call_each(calls: list[Callable[[], Any]]) -> list[Any]:
    results = []
    for call in calls:
        try:
            results.append(call())
        except Exception as exc:  # a receiver's error: raised in its own request only
            results.append(exc)
    return results


#: The request signals of concurrent webhooks, sent together in one trip to the thread
#: where their database work runs: a trip each cost a quarter to a third of the
#: throughput under load (bench/webhook_signals.py).
_in_db_thread: GroupCommit[Callable[[], Any], Any] = GroupCommit(_call_each)


def _webhook(scope: Scope) -> ResolverMatch | None:
    path = scope["path"].removeprefix(get_script_prefix(scope))
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match if match.func in WEBHOOK_VIEWS else None


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, or RequestDataTooBig once it is known to pass the limit (before
    reading anything when Content-Length says so); RequestAborted if the client left."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and (length := _content_length(scope)) > limit:
        raise RequestDataTooBig(_over(limit, f"Content-Length says {length}"))
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig(_over(limit, "more than that has arrived"))
        if not message.get("more_body"):
            return bytes(body)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:  # not ours to judge: the bytes received are counted anyway
                return 0
    return 0


def _over(limit: int, why: str) -> str:
    return f"The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE ({limit} bytes): {why}."


def _replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` for Django's handler: the body read already, then the client's messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _too_big(exc: RequestDataTooBig) -> HttpResponse:
    return JsonResponse({"error": str(exc)}, status=413)


async def _serve(scope: Scope, body: bytes, match: ResolverMatch) -> HttpResponse:
    """The view's response, or the 400 or 500 Django's handler would have given."""
    request = None
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
        # Sent from within the except block: asgiref carries sys.exc_info() into the
        # thread, where receivers (Sentry's among them) read it. A failing receiver is
        # logged and does not change the answer.
        await sync_to_async(signals.got_request_exception.send_robust, thread_sensitive=False)(
            sender=None, request=request)
        return JsonResponse({"error": "The webhook failed; the server log says why."}, status=500)
