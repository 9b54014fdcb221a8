"""Who may use the httptester: one rule, for its views and its WebSocket alike.

The tester stores real messages as any phone number, and shows any conversation. So it is
served only when enabled (SMSROUTER_HTTPTESTER, which follows DEBUG by default), and then
only to active staff users, through Django's session. The one exception: with DEBUG on, a
client on a loopback address needs no account, so that `make run` on a developer's machine
and the README's urllib example keep working. docs/security.md says why that is safe only
with DEBUG on.
"""

import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect, QueryDict
from django.urls import NoReverseMatch, reverse

from smsrouter import conf


def enabled() -> bool:
    """Whether the tester is served at all; off, each of its URLs answers 404."""
    return conf.httptester_enabled()


def allowed(user: Any, client_host: str | None) -> bool:
    """Whether `user` (None without authentication), connecting from `client_host`, may
    use the enabled tester: staff, or with DEBUG on anyone on this machine."""
    return is_staff(user) or (bool(settings.DEBUG) and is_loopback(client_host))


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8 or ::1, as IPv6 servers may also write them (::ffff:127.0.0.1).

    Anything that is not an address (a Unix socket's path, a test client's name) is not.
    """
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def login_url() -> str:
    """Where staff log in: the admin's login page, else the project's LOGIN_URL."""
    try:
        return reverse("admin:login")
    except NoReverseMatch:
        return str(settings.LOGIN_URL)


def login_redirect(next_url: str) -> HttpResponseRedirect:
    """To the login page, and back to `next_url` after it (django.contrib.auth.views'
    redirect_to_login, which cannot be imported where the auth app is not installed)."""
    query = QueryDict(mutable=True)
    query[REDIRECT_FIELD_NAME] = next_url
    return HttpResponseRedirect(f"{login_url()}?{query.urlencode(safe='/')}")
