"""smsrouter: a threadless, ASGI-native SMS router for Django.

The public names load lazily (PEP 562): Django imports this package before the app
registry is ready, and the API modules need the models.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "App",
    "IncomingMessage",
    "OutgoingMessage",
    "SmsRouterError",
    "aincoming",
    "asend",
    "incoming",
    "send",
]
_HOMES = {
    "App": "smsrouter.router",
    "SmsRouterError": "smsrouter.exceptions",
    "IncomingMessage": "smsrouter.messages",
    "OutgoingMessage": "smsrouter.messages",
    **dict.fromkeys(["incoming", "aincoming", "send", "asend"], "smsrouter.api"),
}

if TYPE_CHECKING:
    from smsrouter.api import aincoming, asend, incoming, send
    from smsrouter.exceptions import SmsRouterError
    from smsrouter.messages import IncomingMessage, OutgoingMessage
    from smsrouter.router import App


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'smsrouter' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
