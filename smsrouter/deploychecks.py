"""`manage.py check --deploy`: where production leaves something open (Tags.security).
Each warning names the URL paths it leaves open to anyone who learns them
(docs/security.md):

======================  ==============================================================
smsrouter.W002          a Kannel, Vumi or HTTP backend without `token`: its webhooks
                        take requests from anyone (Kannel's reports excepted: smsrouter
                        signs each dlr-url)
smsrouter.W050          a Twilio backend with 'validate_signature': False (its id is
                        from Twilio's block, as it was an ordinary warning before)
smsrouter.W090          SMSROUTER_HTTPTESTER = True with DEBUG off: staff can post as
                        any number in production
======================  ==============================================================
"""

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from smsrouter import conf
from smsrouter.backends.base import BaseBackend


def check_open_webhooks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`check --deploy`: each backend whose webhooks take requests without proof of their
    sender, named by the paths that anyone who learns them can post to."""
    from smsrouter.backends.kannel import KannelBackend  # aiohttp: only for --deploy

    warnings: list[CheckMessage] = []
    for name, backend_class, given in _backend_classes():
        # Kannel's reports carry the signature of the dlr-url smsrouter wrote, token or not.
        signed_reports = issubclass(backend_class, KannelBackend)
        paths = _webhook_paths(name, backend_class, reports=not signed_reports)
        if not paths:  # smsrouter.urls is not mounted: nothing to reach
            continue
        if "token" in backend_class.options and not given.get("token"):
            warnings.append(Warning(
                f"Backend {name!r} has no token: anyone may call {paths}.",
                hint=f"Add 'token': '<a long random string>' to INSTALLED_BACKENDS[{name!r}], "
                "and token=<it> to the URLs the gateway calls.",
                id="smsrouter.W002"))
        elif "validate_signature" in backend_class.options and (
                given.get("validate_signature") is False):
            warnings.append(Warning(
                f"Backend {name!r} checks no signature: anyone may call {paths}.",
                hint=f"Remove 'validate_signature': False from INSTALLED_BACKENDS[{name!r}]; "
                "it is for development only.",
                id="smsrouter.W050"))
    return warnings


def check_httptester_exposed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`check --deploy`: the httptester turned on for production, where it is mounted."""
    if settings.DEBUG or conf.get("SMSROUTER_HTTPTESTER") is not True:
        return []
    if not django_apps.is_installed("smsrouter.contrib.httptester"):
        return []
    try:
        page = reverse("httptester:index")
    except NoReverseMatch:
        return []
    return [Warning(
        f"SMSROUTER_HTTPTESTER is on with DEBUG off: staff may post as any number at {page}.",
        hint="Remove SMSROUTER_HTTPTESTER = True in production, or silence smsrouter.W090 "
        "if staff are meant to use it there.",
        id="smsrouter.W090")]


def _backend_classes() -> list[tuple[str, type[BaseBackend], dict[str, Any]]]:
    """(name, class, lower-cased options) of each backend that check_backends lets pass
    this far; what it reports is left to it."""
    configured = getattr(settings, "INSTALLED_BACKENDS", None)
    found = []
    for name, config in (configured.items() if isinstance(configured, dict) else ()):
        if not isinstance(config, dict) or not isinstance(config.get("ENGINE"), str):
            continue
        try:
            backend_class = import_string(config["ENGINE"])
        except ImportError:
            continue
        if isinstance(backend_class, type) and issubclass(backend_class, BaseBackend):
            found.append((name, backend_class, {k.lower(): v for k, v in config.items()}))
    return found


def _webhook_paths(name: str, backend_class: type[BaseBackend], reports: bool = True) -> str:
    """Its webhooks' paths, as "/backend/<name>/ and /backend/<name>/status/" (the second
    only with `reports`); "" where the URLconf serves none."""
    with_status = reports and bool(backend_class.status_methods)
    views = ["smsrouter:inbound"] + (["smsrouter:status"] if with_status else [])
    try:
        return " and ".join(reverse(view, args=[name]) for view in views)
    except NoReverseMatch:
        return ""
