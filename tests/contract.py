"""The rules every backend keeps, written once and run against each backend.

As Django's SessionTestsMixin is run against each session backend, each mixin here is a
capability: a backend's test class takes the mixins for what it can do, and supplies the
driver methods that say how to reach it (its options against the `gateway` fixture, how
its gateway hands over a message or a report, its gateway's answers). A backend without a
capability takes no mixin for it, so no test here is skipped and each one can fail.

The mixins, transport-neutral ones first (an HTTP webhook and an SMPP bind both drive them):

- InboundContract: a message the gateway hands over is stored and routed, its reply made
  in response to it; an empty text is an SMS.
- ReportContract: delivery reports move a message forward only.
- SendContract: send() gives one Outcome per message, in order, with the gateway's ids.
- SendFailureContract: a transport error, 5xx or 429 is retried by the outbox; another
  refusal fails the message with the gateway's words.

And the HTTP ones, built on them:

- WebhookContract (an InboundContract): a request without the sender is 400 naming its
  field, and nothing is written.
- WebhookAuthContract: a webhook without its token or signature is 403, nothing written.
- ReportAuthContract (a ReportContract): a report without its proof is 403, nothing changes.

A driver sets `name` and `configure(url)` (calling `install(ENGINE=..., ...)` with `url`
as the API's address), then, by mixin: `deliver(identity, text)` (InboundContract);
`report(message, status)` (ReportContract); `identity_field` and `inbound()`, which give
WebhookContract its `deliver()`; `forged_inbound()`; `report_request()`, which gives
ReportAuthContract its `report()`, and `forged_report()`; `accept(ids)` when the gateway's
success is not a bare 200; `refusal` and `answer_permanent()` when its refusal is not a
400 of those words; `send_apart()` when it puts several messages in one request.
"""

import socket
from collections.abc import Sequence
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

import smsrouter
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message
from tests.gateway import FakeGateway

#: The number every contract test sends to and receives from.
PHONE = "+255700000001"


def rows() -> tuple[int, int, int]:
    """How many Message, Connection and Backend rows there are: a refusal adds none."""
    return Message.objects.count(), Connection.objects.count(), Backend.objects.count()


def dead_url() -> str:
    """A loopback URL nothing listens on, for a transport error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class BackendDriver:
    """What every contract needs of a backend: its name and how to configure it."""

    #: The name the backend is configured under in INSTALLED_BACKENDS.
    name: str

    @pytest.fixture(autouse=True)
    def _configured(self, settings: Any, gateway: FakeGateway) -> None:
        """The backend against the gateway, the echo app answering."""
        settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
        settings.SMSROUTER_DEFAULT_RESPONSE = None
        self.settings, self.gateway = settings, gateway
        self.configure(gateway.url)

    def configure(self, url: str) -> None:
        """Set INSTALLED_BACKENDS[self.name] with `url` as the gateway's address."""
        raise NotImplementedError(f"{type(self).__name__} must implement configure().")

    def install(self, **config: Any) -> None:
        """Configure the backend under its name with `config`, one request at a time so
        that the gateway's queued answers meet the messages in order."""
        self.settings.INSTALLED_BACKENDS = {self.name: {**config, "concurrency": 1}}


class InboundContract(BackendDriver):
    """A backend whose gateway hands over the messages sent to it, by any transport."""

    def deliver(self, identity: str, text: str) -> None:
        """Make the gateway hand over one message from `identity` as it does (an HTTP
        request, a deliver_sm), failing the test unless the backend accepted it."""
        raise NotImplementedError(f"{type(self).__name__} must implement deliver().")

    @pytest.mark.django_db
    def test_an_inbound_message_is_stored_and_routed(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            self.deliver(PHONE, "echo hi")
        incoming = Message.objects.get(direction="in")
        assert (incoming.connection.identity, incoming.connection.backend.name,
                incoming.text, incoming.status) == (PHONE, self.name, "echo hi", "handled")
        reply = Message.objects.get(direction="out")
        assert (reply.text, reply.in_response_to_id) == ("hi", incoming.id)

    @pytest.mark.django_db
    def test_an_empty_text_is_a_valid_sms(self) -> None:
        self.deliver(PHONE, "")
        assert list(Message.objects.values_list("direction", "text", "status")) == [
            ("in", "", "handled")]


class HttpDriver(BackendDriver):
    """A backend whose gateway makes HTTP requests, with the test's client."""

    @pytest.fixture(autouse=True)
    def _client(self, client: Client) -> None:
        """The client that deliver() and report() make the gateway's requests with."""
        self.client = client


class WebhookContract(InboundContract, HttpDriver):
    """A backend whose gateway posts messages to /backend/<name>/."""

    #: The request field that carries the sender, as errors name it.
    identity_field: str

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        """Make the gateway's authentic inbound request; identity None leaves its field out."""
        raise NotImplementedError(f"{type(self).__name__} must implement inbound().")

    def deliver(self, identity: str, text: str) -> None:
        """The gateway's authentic request, answered 200."""
        assert self.inbound(self.client, identity, text).status_code == 200

    @pytest.mark.django_db
    def test_a_request_without_the_sender_is_400_naming_it_and_writes_nothing(
        self, client: Client
    ) -> None:
        before = rows()
        response = self.inbound(client, None, "echo hi")
        assert response.status_code == 400
        assert response.json()["error"].startswith(self.identity_field)
        assert rows() == before


class WebhookAuthContract(WebhookContract):
    """A backend whose webhook proves where a request came from (a token, a signature)."""

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        """The inbound request as anyone else could make it: without its proof."""
        raise NotImplementedError(f"{type(self).__name__} must implement forged_inbound().")

    @pytest.mark.django_db
    def test_an_unproven_inbound_request_is_403_and_writes_nothing(self, client: Client) -> None:
        before = rows()
        assert self.forged_inbound(client, PHONE, "echo hi").status_code == 403
        assert rows() == before
        assert self.gateway.requests == []


class SendContract(BackendDriver):
    """A backend that sends: one Outcome per message, in order."""

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        """Make the gateway take the next messages, stored under `ids`; the ids it gives
        them (by default a 200 that carries none). A gateway that names messages by the id
        the send gave them (Infobip's messageId) answers with `ids`."""
        self.gateway.answer(200, "queued", times=len(ids))
        return [None] * len(ids)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """The backend's send() of `messages`, as the sender calls it."""
        return async_to_sync(backends[self.name].send)(messages)

    def messages(self, count: int) -> list[OutgoingMessage]:
        """`count` messages to different numbers, each with its own text and id."""
        row = Backend(name=self.name)
        return [OutgoingMessage(f"hi {number}",
                                Connection(backend=row, identity=f"+2557000000{number:02}"),
                                record=Message(pk=number)) for number in range(1, count + 1)]

    def test_each_message_has_its_outcome_in_order_with_the_gateways_id(self) -> None:
        ids = self.accept([1, 2, 3])
        assert self.send(self.messages(3)) == [Outcome(external_id=i) for i in ids]


class SendFailureContract(SendContract):
    """A backend whose gateway can refuse: for now, or for good."""

    #: Words of the gateway's permanent refusal, which the message's error keeps.
    refusal = "no such number"

    def answer_temporary(self, status: int) -> None:
        """Make the gateway answer the next request with `status` (a 5xx or 429)."""
        self.gateway.answer(status, "busy")

    def answer_permanent(self) -> None:
        """Make the gateway refuse the next request for good, in words containing `refusal`."""
        self.gateway.answer(400, self.refusal)

    def send_apart(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """send() with each message in a request of its own, so that each queued answer
        meets one message; a backend that puts several in one request overrides it."""
        return self.send(messages)

    def stored(self, message: OutgoingMessage) -> tuple[str, int, bool, str]:
        row = Message.objects.get(pk=message.id)
        assert (message.status, message.error) == (row.status, row.error)
        return row.status, row.attempts, row.due_at is not None, row.error

    @pytest.mark.parametrize("status", [429, 500, 503])
    @pytest.mark.django_db
    def test_a_busy_gateway_is_retried_by_the_outbox(
        self, status: int, django_capture_on_commit_callbacks: Any
    ) -> None:
        self.answer_temporary(status)
        with django_capture_on_commit_callbacks(execute=True):
            (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        state, attempts, due, error = self.stored(message)
        assert (state, attempts, due) == ("queued", 1, True)
        assert error.endswith(f"answered {status}: busy")
        assert len(self.gateway.requests) == 1

    @pytest.mark.django_db
    def test_an_unreachable_gateway_is_retried_by_the_outbox(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        self.configure(dead_url())
        with django_capture_on_commit_callbacks(execute=True):
            (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        state, attempts, due, error = self.stored(message)
        assert (state, attempts, due) == ("queued", 1, True)
        assert " failed: " in error

    @pytest.mark.django_db
    def test_a_temporary_failure_on_the_last_attempt_fails_the_message(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        self.settings.SMSROUTER_SEND_MAX_ATTEMPTS = 1
        self.answer_temporary(503)
        with django_capture_on_commit_callbacks(execute=True):
            (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        state, attempts, due, error = self.stored(message)
        assert (state, attempts, due) == ("failed", 1, False)
        assert error.endswith("answered 503: busy")

    @pytest.mark.django_db
    def test_a_permanent_refusal_fails_the_message_with_the_gateways_words(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        self.answer_permanent()
        with django_capture_on_commit_callbacks(execute=True):
            (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        state, attempts, due, error = self.stored(message)
        assert (state, attempts, due) == ("failed", 1, False)
        assert self.refusal in error

    def test_one_refusal_fails_only_its_own_message(self) -> None:
        (first,) = self.accept([1])
        self.answer_temporary(503)
        self.answer_permanent()
        (last,) = self.accept([4])
        outcomes = self.send_apart(self.messages(4))
        assert [(o.sent, o.temporary, o.external_id) for o in outcomes] == [
            (True, False, first), (False, True, None), (False, False, None), (True, False, last)]
        assert self.refusal in outcomes[2].error


class ReportContract(SendContract):
    """A backend whose gateway reports on what it sent, by any transport."""

    def report(self, message: Message, status: str) -> None:
        """Make the gateway report that `message` is now `status` (sent, delivered) as it
        does (an HTTP request, a receipt's deliver_sm), failing the test unless the
        backend accepted the report."""
        raise NotImplementedError(f"{type(self).__name__} must implement report().")

    @pytest.fixture
    def sent(self, django_capture_on_commit_callbacks: Any) -> Message:
        """A message the gateway took, its status back to "queued" as if just stored."""
        with django_capture_on_commit_callbacks() as callbacks:
            (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        self.accept([message.id])  # stored, not yet sent: the send runs on commit
        for callback in callbacks:
            callback()
        Message.objects.filter(pk=message.id).update(status="queued")
        return Message.objects.get(pk=message.id)

    @pytest.mark.django_db
    def test_a_report_moves_the_message(self, sent: Message) -> None:
        self.report(sent, "delivered")
        assert Message.objects.get(pk=sent.pk).status == "delivered"

    @pytest.mark.django_db
    def test_a_late_sent_after_delivered_changes_nothing(self, sent: Message) -> None:
        self.report(sent, "delivered")
        self.report(sent, "sent")
        assert Message.objects.get(pk=sent.pk).status == "delivered"


class ReportAuthContract(ReportContract, HttpDriver):
    """A backend whose gateway posts reports to /backend/<name>/status/, with a proof."""

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        """The gateway's authentic report that `message` is now `status` (sent, delivered)."""
        raise NotImplementedError(f"{type(self).__name__} must implement report_request().")

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        """The report as anyone else could make it: without its proof."""
        raise NotImplementedError(f"{type(self).__name__} must implement forged_report().")

    def report(self, message: Message, status: str) -> None:
        """The gateway's authentic report, answered 200 or 204."""
        assert self.report_request(self.client, message, status).status_code in (200, 204)

    @pytest.mark.django_db
    def test_an_unproven_report_is_403_and_changes_nothing(
        self, client: Client, sent: Message
    ) -> None:
        assert self.forged_report(client, sent, "delivered").status_code == 403
        assert Message.objects.values_list("status", "error").get(pk=sent.pk) == ("queued", "")
