"""The backend behind the httptester page: a phone simulated in the browser.

Nothing leaves the machine. A reply is "sent" once it is stored, since the page reads the
conversation from the database. Its own webhook, /backend/<name>/, is for scripts on the
developer's machine: it is open only where the tester is served and DEBUG is on, to a
client on a loopback address. It takes no session, so no other site can make a staff
user's browser post to it; staff elsewhere use the tester's page (docs/security.md).
"""

from collections.abc import Sequence

from django.http import HttpRequest

from smsrouter.backends.base import SENT, BaseBackend, Inbound, Outcome, form_inbound
from smsrouter.contrib.httptester import access
from smsrouter.exceptions import BadSignature
from smsrouter.messages import OutgoingMessage


class HttpTesterBackend(BaseBackend):
    """Takes form posts with `identity` and `text`, at /httptester/<name>/ or /backend/<name>/."""

    inbound_methods = ("POST",)
    in_process = True

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """Nothing to hand over: the httptester page reads replies from the database."""
        return [SENT] * len(messages)

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        if not (access.enabled() and access.allowed(None, request.META.get("REMOTE_ADDR"))):
            raise BadSignature(f"backend {self.name!r} takes posts only with DEBUG on, from this "
                               "machine; staff post through the httptester page")

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        return form_inbound(request, "identity", "text")
