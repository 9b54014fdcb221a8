"""Gateways' webhooks: each backend parses its own provider's requests.

/backend/<name>/ takes inbound messages, /backend/<name>/status/ delivery reports. Either
refuses a request before writing anything: 404 for an unknown backend, 405 for a method it
does not take, and the backend's own 400 or 403.
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from smsrouter import reports
from smsrouter.api import aincoming
from smsrouter.backends import backends
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import InboundError, UnknownBackend


@csrf_exempt  # gateways send no CSRF token; backends check their own signatures
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    return await _serve(request, backend_name, "inbound_methods", _accept_message)


@csrf_exempt
async def status(request: HttpRequest, backend_name: str) -> HttpResponse:
    return await _serve(request, backend_name, "status_methods", _record_reports)


async def _accept_message(backend: BaseBackend, request: HttpRequest) -> HttpResponse:
    data = backend.parse_inbound(request)
    await aincoming(
        backend.name, data.identity, data.text, external_id=data.external_id, fields=data.fields
    )
    return backend.inbound_response()


async def _record_reports(backend: BaseBackend, request: HttpRequest) -> HttpResponse:
    parsed = backend.parse_status(request)
    await sync_to_async(reports.apply, thread_sensitive=True)(backend.name, parsed)
    return backend.status_response()


Handler = Callable[[BaseBackend, HttpRequest], Awaitable[HttpResponse]]


async def _serve(request: HttpRequest, backend_name: str, methods: str, handle: Handler) -> HttpResponse:
    """What both webhooks share: the backend by name, its methods, its refusals."""
    try:
        backend = backends[backend_name]
    except UnknownBackend as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    allowed = getattr(backend, methods)
    if request.method not in allowed:
        return HttpResponseNotAllowed(allowed)
    try:
        return await handle(backend, request)
    except InboundError as exc:  # BadInbound 400, BadSignature 403
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
