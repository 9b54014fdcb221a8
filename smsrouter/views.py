"""Gateways' webhooks: each backend parses its own provider's requests.

/backend/<name>/ takes inbound messages, /backend/<name>/status/ delivery reports. Either
refuses a request before writing anything: 404 for an unknown backend, 405 for a method it
does not take, and the backend's own 400 or 403.
"""

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from smsrouter import delivery
from smsrouter.api import aincoming
from smsrouter.backends import backends
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import InboundError, UnknownBackend


@csrf_exempt  # gateways send no CSRF token; backends check their own signatures
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    backend = _backend(backend_name)
    if isinstance(backend, HttpResponse):
        return backend
    if request.method not in backend.inbound_methods:
        return HttpResponseNotAllowed(backend.inbound_methods)
    try:
        data = backend.parse_inbound(request)
    except InboundError as exc:  # BadInbound 400, BadSignature 403
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
    await aincoming(
        backend.name, data.identity, data.text, external_id=data.external_id, fields=data.fields
    )
    return backend.inbound_response()


@csrf_exempt
async def status(request: HttpRequest, backend_name: str) -> HttpResponse:
    backend = _backend(backend_name)
    if isinstance(backend, HttpResponse):
        return backend
    if request.method not in backend.status_methods:
        return HttpResponseNotAllowed(backend.status_methods)
    try:
        reports = backend.parse_status(request)
        await sync_to_async(delivery.apply, thread_sensitive=True)(backend.name, reports)
    except InboundError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
    return backend.status_response()


def _backend(name: str) -> BaseBackend | HttpResponse:
    try:
        return backends[name]
    except UnknownBackend as exc:
        return JsonResponse({"error": str(exc)}, status=404)
