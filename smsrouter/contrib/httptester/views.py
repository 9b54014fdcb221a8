"""A phone in the browser: send as any number on any httptester backend, read the replies."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from smsrouter.api import aincoming
from smsrouter.backends import backends
from smsrouter.contrib.httptester.live import as_json, is_tester
from smsrouter.exceptions import BadInbound
from smsrouter.models import Message

#: The conversation endpoint answers at most this many messages, the newest ones.
CONVERSATION_LIMIT = 200


def tester_backends() -> list[str]:
    return [name for name in backends.names() if is_tester(name)]


def _not_a_tester(name: str) -> JsonResponse:
    known = ", ".join(sorted(tester_backends())) or "none are configured"
    return JsonResponse(
        {"error": f"No httptester backend named {name!r} ({known})."}, status=404
    )


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "httptester/index.html", {"backends": tester_backends()})


@csrf_exempt  # the seed's own example posts with urllib, without a token
@require_POST
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    if not is_tester(backend_name):
        return _not_a_tester(backend_name)
    try:
        data = backends[backend_name].parse_inbound(request)
    except BadInbound as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    await aincoming(backend_name, data.identity, data.text)
    return HttpResponse("OK", content_type="text/plain")


@never_cache  # the page polls it; a cached answer would hide new replies
@require_GET
async def conversation(request: HttpRequest, backend_name: str, identity: str) -> JsonResponse:
    if not is_tester(backend_name):
        return _not_a_tester(backend_name)
    newest = Message.objects.filter(
        connection__backend__name=backend_name, connection__identity=identity.strip()
    ).order_by("-created_at", "-pk")[:CONVERSATION_LIMIT]
    messages = [as_json(message) async for message in newest]
    messages.reverse()
    return JsonResponse({"messages": messages})
