"""Backends for the tests: they record each call, or fail in the ways gateways do."""

from collections.abc import Sequence

from django.http import HttpRequest

from smsrouter.backends.base import SENT, BaseBackend, Inbound, Outcome, form_inbound
from smsrouter.exceptions import TemporarySendError
from smsrouter.messages import OutgoingMessage

#: One entry per send() call: (backend name, [(identity, text), ...]).
calls: list[tuple[str, list[tuple[str, str]]]] = []


class RecordingBackend(BaseBackend):
    """Takes everything; the gateway answers an id of its own for each message."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        calls.append((self.name, [(m.connection.identity, m.text) for m in messages]))
        return [Outcome(external_id=f"gw-{message.id}") for message in messages]


class FormBackend(BaseBackend):
    """A gateway that posts forms (identity, text) and takes every reply, with no auth: the
    webhook that tests of the webhook machinery itself post to."""

    inbound_methods = ("POST",)
    in_process = True

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        return [SENT] * len(messages)

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        return form_inbound(request, "identity", "text")


class DownBackend(BaseBackend):
    """Its gateway is down: every call fails, and a later one may not."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        raise TemporarySendError("gateway answered 503")


class PickyBackend(BaseBackend):
    """Refuses numbers that do not start with +."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        return [SENT if message.connection.identity.startswith("+")
                else Outcome(error="rejected number") for message in messages]


class NeedsUrl(BaseBackend):
    options = {"url": str, "retries": int}
    required_config = ("url",)


class ReportingBackend(RecordingBackend):
    """Takes delivery reports as form posts: `id` (ours) or `ref` (the gateway's), `status`."""

    status_methods = ("POST",)

    def parse_status(self, request):
        from smsrouter.backends.base import StatusReport
        from smsrouter.exceptions import BadInbound

        if "id" in request.POST:
            if not request.POST["id"].isdigit():
                raise BadInbound("id", "must be a number")
            return [StatusReport(request.POST["status"], "id", message_id=int(request.POST["id"]))]
        return [StatusReport(request.POST["status"], "ref", external_id=request.POST.get("ref"),
                             error=request.POST.get("error", ""))]


class FastReporter(ReportingBackend):
    """Its gateway reports delivery before send() returns, as Kannel's sometimes does."""

    async def send(self, messages):
        from asgiref.sync import sync_to_async

        from smsrouter import reports
        from smsrouter.backends.base import StatusReport

        outcomes = await super().send(messages)
        report = StatusReport("delivered", "id", message_id=messages[0].id)
        await sync_to_async(reports.apply)(self.name, [report])
        return outcomes


class DefersBackend(BaseBackend):
    """Holds no link in this process: leaves every message for the process that does."""

    holds_link = True

    def ready(self) -> bool:
        return False

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        raise AssertionError("send() called on a backend that is not ready()")


class MiscountingBackend(BaseBackend):
    """A bug: one outcome, whatever it was given."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        return [SENT]
