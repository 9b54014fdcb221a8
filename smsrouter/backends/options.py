"""Checks of a backend's options that several backends share, for their check_config().

An option set to "" is a secret or a sender copied from nowhere: the common checks accept
its type, yet the gateway refuses every send, or anyone can post. A URL option that paths
follow must be absolute, or every request goes nowhere.
"""

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.checks import CheckMessage, Error


def empty_options(
    name: str, given: Mapping[str, Any], checks: Iterable[tuple[str, str, str, str | None]]
) -> list[CheckMessage]:
    """An error for each option given as "": `checks` holds (option, check id, what
    follows from it being empty, hint); a hint of None says where to set the option."""
    return [
        Error(f"Backend {name!r}: {option} is empty, so {why}.",
              hint=hint or f"Set INSTALLED_BACKENDS[{name!r}][{option!r}].",
              id=f"smsrouter.{check_id}")
        for option, check_id, why, hint in checks if given.get(option) == ""
    ]


def absolute(url: str, schemes: tuple[str, ...] = ("http", "https")) -> SplitResult | None:
    """The URL's parts when it is absolute, with one of `schemes`, a host and a usable port;
    None otherwise."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number
        return None
    return parts if port_ok and parts.scheme in schemes and parts.hostname else None
