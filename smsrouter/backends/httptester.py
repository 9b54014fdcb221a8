"""The backend behind the httptester page: a phone simulated in the browser.

Nothing leaves the machine. A reply is "sent" once it is stored, since the page reads the
conversation from the database.
"""

from collections.abc import Sequence

from django.http import HttpRequest

from smsrouter.backends.base import SENT, BaseBackend, Inbound, Outcome, form_inbound
from smsrouter.messages import OutgoingMessage


class HttpTesterBackend(BaseBackend):
    """Takes form posts with `identity` and `text`, at /httptester/<name>/ or /backend/<name>/."""

    inbound_methods = ("POST",)
    in_process = True

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """Nothing to hand over: the httptester page reads replies from the database."""
        return [SENT] * len(messages)

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        return form_inbound(request, "identity", "text")
