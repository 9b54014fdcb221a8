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
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def installed_backends() -> dict[str, dict[str, Any]]:
    return getattr(settings, "INSTALLED_BACKENDS", {})
