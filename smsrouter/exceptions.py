"""Everything smsrouter raises, and what a caller should do about it.

    SmsRouterError
      x ConfigurationError     settings are wrong; `manage.py check` names the fix
      x UnknownBackend         no such name in INSTALLED_BACKENDS (views answer 404)
      x InboundError           a webhook we refuse; nothing was written
        + BadInbound           400, names the field; also a ValueError (incoming()'s refusals)
          + BodyTooLarge       413, the body is over DATA_UPLOAD_MAX_MEMORY_SIZE
        + BadSignature         403
      x SendError              the gateway did not take the message
        + TemporarySendError   a retry may succeed (timeouts, 5xx, 429)
        + PermanentSendError   never retry (4xx, bad credentials, rejected number)
"""

from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured


class SmsRouterError(Exception):
    """The root of everything smsrouter raises on purpose."""


class ConfigurationError(SmsRouterError, ImproperlyConfigured):
    """Settings are wrong; `manage.py check` says what to write instead."""


class UnknownBackend(SmsRouterError, LookupError):
    """A backend name that INSTALLED_BACKENDS does not define."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        choices = ", ".join(sorted(known)) or "none are configured"
        super().__init__(f"No backend named {name!r} in INSTALLED_BACKENDS ({choices}).")


class InboundError(SmsRouterError):
    """A request a backend refuses to turn into a message; nothing was written."""

    status_code = 400


class BadInbound(InboundError, ValueError):
    """A required field is missing or malformed, or holds what no database can store
    (smsrouter.limits); the message names the field.

    A ValueError too: `incoming()` refuses bad arguments with it, as documented.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field} {problem}")


class BodyTooLarge(BadInbound):
    """The request's body is over DATA_UPLOAD_MAX_MEMORY_SIZE; none of it is kept."""

    status_code = 413


class BadSignature(InboundError):
    """The request's signature or token does not prove it came from the gateway."""

    status_code = 403


class SendError(SmsRouterError):
    """The gateway did not take the message."""


class TemporarySendError(SendError):
    """The gateway may take the message later: retry with backoff."""


class PermanentSendError(SendError):
    """The gateway refused the message for good: do not retry."""
