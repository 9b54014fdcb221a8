"""An in-memory backend for tests: what it sends lands in `outbox`, like Django's mail.outbox."""

from collections.abc import Sequence

from django.http import HttpRequest

from smsrouter.backends.base import SENT, BaseBackend, Inbound, Outcome, form_inbound
from smsrouter.messages import OutgoingMessage

#: Every message any LocmemBackend sent, in order. Tests empty it between runs.
outbox: list[OutgoingMessage] = []


class LocmemBackend(BaseBackend):
    """Sends to the module's `outbox`; takes inbound form posts with `identity` and `text`."""

    inbound_methods = ("POST",)
    in_process = True

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        outbox.extend(messages)
        return [SENT] * len(messages)

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        return form_inbound(request, "identity", "text")
