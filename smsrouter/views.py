"""Gateways' webhooks: each backend parses its own provider's requests.

/backend/<name>/ takes inbound messages, /backend/<name>/status/ delivery reports. Either
refuses a request before writing anything: 404 for an unknown backend, 405 for a method it
does not take and 403 for a token its URL lacks (all three from `refusal`, which the fast
path in smsrouter.webhooks calls too, before reading a byte of the body), 413 for a body
over `body_limit`, and the backend's own 400 or 403.
"""

import asyncio
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import global_settings, settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from smsrouter import parts, reports
from smsrouter.api import aincoming, checked
from smsrouter.backends import backends
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import InboundError, UnknownBackend


@csrf_exempt  # gateways send no CSRF token; backends check their own signatures
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    return await _serve(request, backend_name, "inbound", _accept_message)


@csrf_exempt
async def status(request: HttpRequest, backend_name: str) -> HttpResponse:
    return await _serve(request, backend_name, "status", _record_reports)


#: What Django's handler answers 400 for, rather than 500 (a query of too many fields, a
#: malformed multipart body).
BAD_REQUEST = (SuspiciousOperation, BadRequest, MultiPartParserError, UnicodeDecodeError)
#: Each webhook view and its name for backends (`<name>_methods`, check_request's `webhook`).
WEBHOOKS: dict[Callable[..., Awaitable[HttpResponse]], str] = {inbound: "inbound", status: "status"}


def refusal(request: HttpRequest, backend_name: str, webhook: str) -> HttpResponse | None:
    """The answer refusing a webhook on its URL and method alone, or None to read its body.

    One check for both ways in: the fast path calls it before reading the body, and the
    view again, so a request is refused alike with the fast path on or off.
    """
    try:
        backend = backends[backend_name]
    except UnknownBackend as exc:
        # The configured names tell a prober which gateways to forge: only for a developer.
        error = str(exc) if settings.DEBUG else f"No backend named {exc.name!r}."
        return JsonResponse({"error": error}, status=404)
    allowed = getattr(backend, f"{webhook}_methods")
    if request.method not in allowed:
        return HttpResponseNotAllowed(allowed)
    try:
        backend.check_request(request, webhook)
    except InboundError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
    return None


def body_limit() -> int:
    """The most bytes a webhook's body may have: DATA_UPLOAD_MAX_MEMORY_SIZE.

    When that is None (no limit, in Django), webhooks keep Django's default for it: their
    body is held in memory whole, and none a gateway sends comes near 2.5 MB, so None, set
    for a project's own uploads, must not let anyone who finds the URL fill the memory.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit


def too_big(why: str) -> JsonResponse:
    """The 413 for a body over body_limit(); `why` says how that is known."""
    limit = body_limit()
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is None:
        over = f"{limit} bytes, the webhooks' limit while DATA_UPLOAD_MAX_MEMORY_SIZE is None"
    else:
        over = f"DATA_UPLOAD_MAX_MEMORY_SIZE ({limit} bytes)"
    return JsonResponse({"error": f"The request body is over {over}: {why}."}, status=413)


def content_length(request: HttpRequest) -> int:
    """The length the request's headers announce; 0 when they announce none or nonsense
    (the bytes that arrive are counted anyway)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


async def _accept_message(backend: BaseBackend, request: HttpRequest) -> HttpResponse:
    """Accept what the webhook carries: one message, or several (Infobip posts a list).
    Every one is checked first, so a bad one refuses the request with nothing stored; the
    rest are accepted together, in one group commit, and parts of a long SMS stored until
    their text is whole (smsrouter.parts)."""
    parsed = backend.parse_inbound(request)
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        checked(backend.name, item.identity, item.text, item.external_id, item.fields)
    await asyncio.gather(*(
        aincoming(backend.name, item.identity, item.text, external_id=item.external_id,
                  fields=item.fields)
        for item in items if item.part is None))
    for item in items:
        if item.part is not None:  # in request order: each part locks its sender's row
            await sync_to_async(parts.receive, thread_sensitive=True)(backend.name, item)
    return backend.inbound_response()


async def _record_reports(backend: BaseBackend, request: HttpRequest) -> HttpResponse:
    parsed = backend.parse_status(request)
    await sync_to_async(reports.apply, thread_sensitive=True)(backend.name, parsed)
    return backend.status_response()


Handler = Callable[[BaseBackend, HttpRequest], Awaitable[HttpResponse]]


async def _serve(request: HttpRequest, backend_name: str, webhook: str,
                 handle: Handler) -> HttpResponse:
    """What both webhooks share: the early refusals, the body limit, the backend's refusals."""
    try:
        if (refused := refusal(request, backend_name, webhook)) is not None:
            return refused
        if (length := content_length(request)) > body_limit():
            return too_big(f"Content-Length says {length}")
        return await handle(backends[backend_name], request)
    except InboundError as exc:  # BadInbound 400, BadSignature 403
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
    except RequestDataTooBig:  # Django's own count, for a body without Content-Length
        return too_big("more than that has arrived")
    except BAD_REQUEST as exc:
        # What Django's handler would answer 400 for (a query of too many fields, a
        # malformed multipart body), as JSON.
        return JsonResponse({"error": f"Bad request: {exc}"}, status=400)
