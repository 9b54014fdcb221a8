"""A phone in the browser: send as any number on any httptester backend, read the replies.

Every view first applies `access`: off, it is a 404; to someone the tester is not for,
the page redirects to the login and the endpoints answer 403. Neither writes anything.
"""

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from smsrouter.api import aincoming
from smsrouter.backends import backends
from smsrouter.contrib.httptester import access
from smsrouter.contrib.httptester.live import as_json, is_tester
from smsrouter.exceptions import BadInbound
from smsrouter.models import Message

#: The conversation endpoint answers at most this many messages, the newest ones.
CONVERSATION_LIMIT = 200


def tester_backends() -> list[str]:
    return [name for name in backends.names() if is_tester(name)]


def _not_a_tester(name: str) -> JsonResponse:
    if not settings.DEBUG:  # the names of the other backends are nobody's business
        return JsonResponse({"error": f"No httptester backend named {name!r}."}, status=404)
    known = ", ".join(sorted(tester_backends())) or "none are configured"
    return JsonResponse(
        {"error": f"No httptester backend named {name!r} ({known})."}, status=404
    )


def _off() -> str:
    return "The httptester is off (SMSROUTER_HTTPTESTER)." if settings.DEBUG else "Not found."


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, answered in JSON like the endpoint's other refusals (every
    refusal of CsrfViewMiddleware goes through _reject; a test pins the answer)."""

    def _reject(self, request: HttpRequest, reason: str) -> JsonResponse:
        return JsonResponse({"error": f"CSRF check failed: {reason} Post from the httptester "
                             "page, which sends its X-CSRFToken header."}, status=403)


_csrf = _CsrfCheck(lambda request: HttpResponse())  # only process_view() is used


async def _refusal(request: HttpRequest) -> JsonResponse | None:
    """The endpoints' answer to a request the tester is not served to; None to serve it.

    The post is csrf_exempt, for urllib on a developer's machine; a post that a staff
    session authorizes must still pass Django's CSRF check, or any site a staff user
    visits could post as them.
    """
    if not access.enabled():
        return JsonResponse({"error": _off()}, status=404)
    user = await _user(request)
    if not access.allowed(user, request.META.get("REMOTE_ADDR")):
        return JsonResponse({"error": "The httptester is for staff users: log in at "
                             f"{access.login_url()} first."}, status=403)
    if getattr(user, "is_authenticated", False):
        return _csrf.process_view(request, None, (), {})
    return None


async def _user(request: HttpRequest) -> Any:
    """The session's user, or None where AuthenticationMiddleware is not installed."""
    auser = getattr(request, "auser", None)
    return None if auser is None else await auser()


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    if not access.enabled():
        raise Http404(_off())
    if not access.allowed(getattr(request, "user", None), request.META.get("REMOTE_ADDR")):
        return access.login_redirect(request.get_full_path())
    return render(request, "httptester/index.html", {"backends": tester_backends()})


@csrf_exempt  # the seed's own example posts with urllib, without a token: see _refusal
@require_POST
async def inbound(request: HttpRequest, backend_name: str) -> HttpResponse:
    if (refused := await _refusal(request)) is not None:
        return refused
    if not is_tester(backend_name):
        return _not_a_tester(backend_name)
    try:
        data = backends[backend_name].parse_inbound(request)
        await aincoming(backend_name, data.identity, data.text)  # BadInbound: smsrouter.limits
    except BadInbound as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status_code)
    return HttpResponse("OK", content_type="text/plain")


@never_cache  # the page polls it; a cached answer would hide new replies
@require_GET
async def conversation(request: HttpRequest, backend_name: str, identity: str) -> JsonResponse:
    if (refused := await _refusal(request)) is not None:
        return refused
    if not is_tester(backend_name):
        return _not_a_tester(backend_name)
    newest = Message.objects.filter(
        connection__backend__name=backend_name, connection__identity=identity.strip()
    ).order_by("-created_at", "-pk")[:CONVERSATION_LIMIT]
    messages = [as_json(message) async for message in newest]
    messages.reverse()
    return JsonResponse({"messages": messages})
