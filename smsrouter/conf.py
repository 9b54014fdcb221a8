"""smsrouter's settings, with their defaults in one place.

Read through these functions rather than `settings.X` so that `override_settings` and
pytest-django's `settings` fixture take effect at once and a missing setting has a default.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "SMSROUTER_APPS": [],
    "SMSROUTER_PROCESSING": "inline",
    "SMSROUTER_DEFAULT_RESPONSE": None,
    # Serve /backend/<name>/ webhooks ahead of Django's middleware (smsrouter.webhooks).
    "SMSROUTER_WEBHOOK_FAST_PATH": True,
    # Sends that fail for a reason a retry may fix (queued modes): how often and how soon.
    "SMSROUTER_SEND_MAX_ATTEMPTS": 8,
    "SMSROUTER_SEND_BACKOFF": 5.0,
    "SMSROUTER_SEND_BACKOFF_MAX": 600.0,
    # smsrouter_recover re-dispatches messages untouched for this long (seconds).
    "SMSROUTER_RECOVER_AFTER": 300,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def installed_backends() -> dict[str, dict[str, Any]]:
    return getattr(settings, "INSTALLED_BACKENDS", {})
