"""Inbound webhooks: /backend/<backend_name>/ hands the request to that backend's parser."""

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from smsrouter.api import aincoming
from smsrouter.backends import backends
from smsrouter.exceptions import InboundError, UnknownBackend


@csrf_exempt  # gateways send no CSRF token; backends check their own signatures
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    try:
        backend = backends[backend_name]
    except UnknownBackend as exc:
        return JsonResponse({"error": str(exc)}, status=404)
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
