"""Backends for the tests: they record each call, or fail in the ways gateways do."""

from collections.abc import Sequence

from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import TemporarySendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

#: One entry per send() call: (backend name, [(identity, text), ...]).
calls: list[tuple[str, list[tuple[str, str]]]] = []


class RecordingBackend(BaseBackend):
    """Takes everything; the gateway answers an id of its own for each message."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> None:
        calls.append((self.name, [(m.connection.identity, m.text) for m in messages]))
        for message in messages:
            message.external_id = f"gw-{message.id}"


class DownBackend(BaseBackend):
    async def send(self, messages: Sequence[OutgoingMessage]) -> None:
        raise TemporarySendError("gateway answered 503")


class PickyBackend(BaseBackend):
    """Refuses numbers that do not start with +."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> None:
        for message in messages:
            if not message.connection.identity.startswith("+"):
                message.status, message.error = Status.FAILED, "rejected number"


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

        await super().send(messages)
        report = StatusReport("delivered", "id", message_id=messages[0].id)
        await sync_to_async(reports.apply)(self.name, [report])


class DefersBackend(BaseBackend):
    """Holds no link in this process: leaves every message for the process that does."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> None:
        for message in messages:
            message.deferred = True
