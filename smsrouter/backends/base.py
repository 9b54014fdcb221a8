"""What every backend is: a named gateway that parses its own webhooks and sends messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest, HttpResponse

from smsrouter.exceptions import BadInbound

if TYPE_CHECKING:
    from smsrouter.messages import OutgoingMessage


@dataclass
class Inbound:
    """One message as a backend parsed it from a gateway's request."""

    identity: str
    text: str
    external_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class BaseBackend:
    """A gateway, under one name of INSTALLED_BACKENDS.

    The options of that entry, less ENGINE, arrive as keyword arguments, keys lower-cased
    (`config`). One engine may serve several names, each with its own options.
    """

    #: HTTP methods the inbound view accepts; empty for a backend that takes no webhooks.
    inbound_methods: tuple[str, ...] = ()
    #: Options without which the backend cannot work; `manage.py check` reports them.
    required_config: tuple[str, ...] = ()

    def __init__(self, name: str, **config: Any) -> None:
        self.name = name
        self.config = {key.lower(): value for key, value in config.items()}

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """System-check errors for this backend's options (ENGINE already removed)."""
        given = {key.lower() for key in config}
        return [
            Error(
                f"Backend {name!r} needs the option {option!r}.",
                hint=f"Add {option!r}: ... to INSTALLED_BACKENDS[{name!r}].",
                id="smsrouter.E005",
            )
            for option in cls.required_config
            if option not in given
        ]

    # Methods that subclasses implement.
    async def send(self, messages: Sequence[OutgoingMessage]) -> None:
        """Hand the messages to the gateway, as few calls as it allows.

        Set `external_id` on a message when the gateway returns one. To fail only some
        messages, set their `status` to "failed" and their `error`; raise to fail them all.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement send().")

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        """Turn the gateway's webhook into an Inbound; raise BadInbound naming the field."""
        raise NotImplementedError(f"{type(self).__name__} takes no inbound webhooks.")

    def inbound_response(self) -> HttpResponse:
        """What the gateway expects back once the message is accepted."""
        return HttpResponse("OK", content_type="text/plain")


def form_inbound(request: HttpRequest, identity_field: str, text_field: str) -> Inbound:
    """Read a form-encoded message. The identity must not be empty; the text may be."""
    data = request.POST if request.method == "POST" else request.GET
    identity = data.get(identity_field, "").strip()
    if not identity:
        raise BadInbound(identity_field, "is required")
    if text_field not in data:
        raise BadInbound(text_field, "is required (it may be empty)")
    return Inbound(identity=identity, text=data[text_field])
