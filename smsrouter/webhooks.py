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

Nothing of a webhook's body is read until its URL has passed what can be checked without
it (views.refusal: the backend exists, takes the method, and finds its token in the query
string; and the Host header): a refusal costs the server the request's headers, however
large the body the client is still sending. Then a body over views.body_limit()
(DATA_UPLOAD_MAX_MEMORY_SIZE) is refused with a 413 as soon as its Content-Length or the
bytes received so far say so, without reading the rest: the body is held in memory, so the
limit covers all of it, file parts of a multipart body included, and no buffer here ever
holds more. Both hold with the fast path off too: those refusals are answered here, and
only an admitted webhook, its body read, goes on to Django's handler.
"""

import io
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestAborted, RequestDataTooBig
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
#: What building a request from its headers raises for a client's nonsense (beyond what
#: Django's handler answers 400 for): a NUL or an unknown codec in the charset.
UNBUILDABLE = (*views.BAD_REQUEST, ValueError, LookupError)


class WebhookFastPath:
    """The ASGI app in front of Django's: webhooks to their views, the rest to Django."""

    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _webhook(scope)
        if match is None:
            if (refused := _unreadable(scope)) is not None:
                await self.respond(scope, send, partial(_given, refused))
                return
            await self.django_app(scope, receive, send)
            return
        body = io.BytesIO()  # the request's stream, filled once the request is admitted
        request = await _admit(scope, body, match)
        if isinstance(request, HttpResponse):  # refused on its headers and URL
            await self.respond(scope, send, partial(_given, request))
            return
        try:
            await _read_body(request, receive, body)
        except RequestAborted:  # the client hung up before the body was in
            return
        except RequestDataTooBig as exc:
            await self.respond(scope, send, partial(_given, views.too_big(str(exc))))
            return
        if not conf.get("SMSROUTER_WEBHOOK_FAST_PATH"):
            await self.django_app(scope, _replayed(body.getvalue(), receive), send)
            return
        body.seek(0)
        await self.respond(scope, send, partial(_serve, scope, request))

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
    return match if match.func in views.WEBHOOKS else None


async def _admit(scope: Scope, body: io.BytesIO,
                 match: ResolverMatch) -> ASGIRequest | HttpResponse:
    """The webhook's request over `body` (still empty), or the answer refusing it on its
    headers and URL alone: a bad Host or query string, or views.refusal's."""
    request = None
    try:
        request = ASGIRequest(scope, body)
        request.resolver_match = match
        request.get_host()  # ALLOWED_HOSTS, as for any Django request
        webhook = views.WEBHOOKS[match.func]
        refused = views.refusal(request, match.kwargs["backend_name"], webhook)
        return request if refused is None else refused
    except UNBUILDABLE as exc:
        return _bad_request(exc)
    except Exception:
        return await _failed(scope, request)


def _unreadable(scope: Scope) -> HttpResponse | None:
    """The 400 for a request Django's handler could not even build, or None.

    ASGIHandler.create_request turns only UnicodeDecodeError and RequestDataTooBig into
    answers: a query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields with a
    charset in the Content-Type raises TooManyFieldsSent from the constructor, a NUL in that
    charset ValueError, and either was a 500 on any page. Building the request once more
    costs a page a few microseconds, and webhooks not at all.
    """
    try:
        ASGIRequest(scope, io.BytesIO())
    except UNBUILDABLE as exc:
        return _bad_request(exc)
    return None


async def _read_body(request: ASGIRequest, receive: Receive, body: io.BytesIO) -> None:
    """Write the request body into `body`. RequestDataTooBig once it is known to pass the
    limit, before reading anything when Content-Length says so, and before keeping the chunk
    that would pass it; RequestAborted if the client left."""
    limit = views.body_limit()
    if (length := views.content_length(request)) > limit:
        raise RequestDataTooBig(f"Content-Length says {length}")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        chunk = message.get("body", b"")
        if body.tell() + len(chunk) > limit:
            raise RequestDataTooBig("more than that has arrived")
        body.write(chunk)
        if not message.get("more_body"):
            return


def _replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` for Django's handler: the body read already, then the client's messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _given(response: HttpResponse) -> HttpResponse:
    return response


async def _serve(scope: Scope, request: ASGIRequest) -> HttpResponse:
    """The view's response, or the 400 or 500 Django's handler would have given."""
    match = request.resolver_match
    try:
        return await match.func(request, *match.args, **match.kwargs)
    except views.BAD_REQUEST as exc:
        return _bad_request(exc)
    except Exception:
        return await _failed(scope, request)


def _bad_request(exc: Exception) -> HttpResponse:
    if isinstance(exc, DisallowedHost):
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"error": f"Bad request: {exc}"}, status=400)


async def _failed(scope: Scope, request: ASGIRequest | None) -> HttpResponse:
    """The 500 for a webhook that raised; awaited in the except block that caught it."""
    logger.exception("webhook %s failed", scope["path"])
    # Sent from within the except block: asgiref carries sys.exc_info() into the thread,
    # where receivers (Sentry's among them) read it. A failing receiver is logged and does
    # not change the answer.
    await sync_to_async(signals.got_request_exception.send_robust, thread_sensitive=False)(
        sender=None, request=request)
    return JsonResponse({"error": "The webhook failed; the server log says why."}, status=500)
