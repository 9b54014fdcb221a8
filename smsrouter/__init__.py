"""smsrouter: a threadless, ASGI-native SMS router for Django.

The public names load lazily (PEP 562): Django imports this package before the app
registry is ready, and the API modules need the models.
"""

from typing import TYPE_CHECKING

from smsrouter import lazynames

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


__getattr__, __dir__ = lazynames.exports(__name__, _HOMES, __all__, globals())
