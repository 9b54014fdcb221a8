"""The backend contract (tests/contract.py) run against every backend.

Each class is a backend's driver: how to configure it against its gateway's stand-in (the
`gateway` fixture over HTTP, a fake SMSC for SMPP), how that gateway hands over messages
and reports, and how it answers. Provider-specific behaviour stays in each
backend's own test module.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from twilio.request_validator import RequestValidator

import smsrouter
from smsrouter.backends import infobip
from smsrouter.backends.base import Outcome
from smsrouter.backends.kannel import dlr_signature
from smsrouter.backends.smpp import SmppBackend
from smsrouter.backends.vonage import signature as vonage_signature
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Message
from smsrouter.smpp import pdu
from tests.contract import (PHONE, InboundContract, ReportAuthContract, ReportContract,
                            SendContract, SendFailureContract,
                            WebhookAuthContract, WebhookContract)
from tests.smsc import FakeSmsc

T = TypeVar("T")
#: How long a bind, and what is done over it, may take.
SMPP_TIMEOUT = 10


class TestHttpBackend(WebhookAuthContract, SendFailureContract):
    """No delivery reports: a template's answer carries no id either."""

    name = "acme"
    identity_field = "from"

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.http.HttpBackend", identity_param="from",
                     text_param="msg", token="t0k", outbound_url=f"{url}/v1/sms",
                     outbound_params={"to": "{identity}", "text": "{text}"})

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        query = {"msg": text} if identity is None else {"from": identity, "msg": text}
        return client.post("/backend/acme/?token=t0k", query)

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return client.post("/backend/acme/?token=guess", {"from": identity, "msg": text})


class TestKannelBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    name = "kannel"
    identity_field = "id"
    refusal = "Sender missing and no global set, rejected"

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.kannel.KannelBackend",
                     sendsms_url=f"{url}/cgi-bin/sendsms", token="s3cret",
                     delivery_report_url="https://sms.example.org")

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        self.gateway.answer(202, "0: Accepted for delivery", times=len(ids))
        return [None] * len(ids)

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        query = {"text": text, "charset": "UTF-8", "token": "s3cret"}
        return client.get("/backend/kannel/",
                          query if identity is None else {**query, "id": identity})

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return client.get("/backend/kannel/", {"id": identity, "text": text})

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return client.get("/backend/kannel/status/", {
            "message_id": message.pk, "status": {"delivered": 1, "sent": 8}[status],
            "sig": dlr_signature("kannel", message.pk), "token": "s3cret"})

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return client.get("/backend/kannel/status/", {
            "message_id": message.pk, "status": 1, "sig": "forged", "token": "s3cret"})


SID = "AC" + "0123456789abcdef" * 2
TOKEN = "f" * 16 + "0" * 16


def twilio_post(client: Client, path: str, data: dict[str, str], token: str = TOKEN) -> Any:
    """POST as Twilio does, signed over the URL it called and the form."""
    signature = RequestValidator(token).compute_signature(f"http://testserver{path}", data)
    return client.post(path, data, headers={"X-Twilio-Signature": signature})


class TestTwilioBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    name = "twilio"
    identity_field = "From"
    refusal = "The 'To' number is not a valid phone number."

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.twilio.TwilioBackend", account_sid=SID,
                     auth_token=TOKEN, from_number="+15005550006", api_url=url,
                     public_url="http://testserver")

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        sids = [f"SM{len(self.gateway.requests) + i:032}" for i in range(len(ids))]
        for sid in sids:
            self.gateway.answer(201, json.dumps({"sid": sid}),
                                headers={"Content-Type": "application/json"})
        return sids

    def answer_permanent(self) -> None:
        self.gateway.answer(400, json.dumps({"code": 21211, "message": self.refusal}),
                            headers={"Content-Type": "application/json"})

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        form = {"MessageSid": "SM" + "1" * 32, "Body": text}
        return twilio_post(client, "/backend/twilio/",
                           form if identity is None else {**form, "From": identity})

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return twilio_post(client, "/backend/twilio/", {"From": identity, "Body": text},
                           token="0" * 32)

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return twilio_post(client, "/backend/twilio/status/",
                           {"MessageSid": message.external_id, "MessageStatus": status})

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return twilio_post(client, "/backend/twilio/status/",
                           {"MessageSid": message.external_id, "MessageStatus": status},
                           token="0" * 32)


class TestVumiBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    name = "vumi"
    identity_field = "from_addr"
    refusal = '{"error": "bad to_addr"}'

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.vumi.VumiBackend",
                     sendsms_url=f"{url}/api/v1/go/http_api_nostream/conv/messages.json",
                     sendsms_user="account", sendsms_pass="access-token", token="s3cret")

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        vumi_ids = [f"vumi-{len(self.gateway.requests) + i}" for i in range(len(ids))]
        for vumi_id in vumi_ids:
            self.gateway.answer(200, json.dumps({"message_id": vumi_id}))
        return vumi_ids

    def post(self, client: Client, path: str, payload: dict[str, Any]) -> Any:
        return client.post(path, json.dumps(payload), content_type="application/json")

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        payload = {"message_id": "vumi-in-1", "to_addr": "1234", "content": text}
        return self.post(client, "/backend/vumi/?token=s3cret",
                         payload if identity is None else {**payload, "from_addr": identity})

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return self.post(client, "/backend/vumi/", {"from_addr": identity, "content": text})

    def event(self, message: Message, status: str) -> dict[str, Any]:
        return {"message_type": "event", "user_message_id": message.external_id,
                **({"event_type": "ack"} if status == "sent" else
                   {"event_type": "delivery_report", "delivery_status": status})}

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return self.post(client, "/backend/vumi/status/?token=s3cret", self.event(message, status))

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return self.post(client, "/backend/vumi/status/?token=guess", self.event(message, status))


class TestModemBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    """The GSM modem bridge's posts in, its /send out: `gateway` stands in for the bridge."""

    name = "modem"
    identity_field = "from"
    auth = {"HTTP_AUTHORIZATION": "Bearer m0dem"}

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.modem.ModemBackend", bridge_url=url,
                     token="m0dem")

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        """The bridge names each part by its TP-MR and a counter of its own."""
        references = [f"{i}-{len(self.gateway.requests) + i}" for i in range(len(ids))]
        for reference in references:
            self.gateway.answer(200, json.dumps({"references": [reference]}))
        return references

    def post(self, client: Client, path: str, payload: dict[str, Any], **auth: str) -> Any:
        return client.post(path, json.dumps(payload), content_type="application/json", **auth)

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        payload = {"id": "a1b2", "text": text, "timestamp": "2026-12-03T09:00:00+03:00",
                   "part": None}
        return self.post(client, "/backend/modem/",
                         payload if identity is None else {**payload, "from": identity},
                         **self.auth)

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return self.post(client, "/backend/modem/", {"id": "a1b2", "from": identity,
                                                     "text": text})

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        """A status report's state: "pending" (TP-ST 0x20) while the service centre tries."""
        state, code = {"sent": ("pending", 0x20)}.get(status, (status, 0))
        return self.post(client, "/backend/modem/status/",
                         {"reference": message.external_id, "status": state, "code": code},
                         **self.auth)

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return self.post(client, "/backend/modem/status/",
                         {"reference": message.external_id, "status": status},
                         HTTP_AUTHORIZATION="Bearer guess")


class TestLocmemBackend(WebhookContract, SendContract):
    """In-process: every message is sent, and the webhook takes any form post."""

    name = "locmem"
    identity_field = "identity"

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.locmem.LocmemBackend")

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        form = {"text": text}
        return client.post("/backend/locmem/",
                           form if identity is None else {**form, "identity": identity})


class TestHttpTesterBackend(WebhookAuthContract, SendContract):
    """In-process; its webhook is open only with DEBUG on, to a client on this machine."""

    name = "httptester"
    identity_field = "identity"

    @pytest.fixture(autouse=True)
    def _debug(self, settings: Any) -> None:
        settings.DEBUG = True
        settings.SMSROUTER_HTTPTESTER = True

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.httptester.HttpTesterBackend")

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        form = {"text": text}
        return client.post("/backend/httptester/",
                           form if identity is None else {**form, "identity": identity})

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return client.post("/backend/httptester/", {"identity": identity, "text": text},
                           REMOTE_ADDR="203.0.113.7")


class TestSmppBackend(InboundContract, ReportContract):
    """Its gateway is a fake SMSC on loopback, bound, used and unbound within each send,
    deliver_sm and receipt, in a loop of its own as the process holding the bind runs it.
    Its outbox, link drops and malformed PDUs are in tests/test_backend_smpp.py, as only
    the process holding the bind sends."""

    name = "smpp"

    @pytest.fixture(autouse=True)
    def _committing(self, transactional_db: None) -> None:
        """The bound backend stores from asgiref's database thread, on a connection of its
        own: what it commits is what the test then reads."""

    def configure(self, url: str) -> None:
        """The SMSC's port is known once it listens: bound() gives it to an instance of
        its own. The one configured here is never bound, as in a process without the bind."""
        self.install(ENGINE="smsrouter.backends.smpp.SmppBackend", host="127.0.0.1",
                     port=2775, system_id="smsrouter", password="secret", source_addr="15555")

    def bound(self, act: Callable[[FakeSmsc, SmppBackend], Awaitable[T]]) -> T:
        """What `act` gives, run against the backend bound to a fake SMSC, in a loop of its
        own and within SMPP_TIMEOUT; then unbound, and the database thread's connection
        closed so that it holds no test database open."""
        async def run() -> T:
            smsc = FakeSmsc()
            port = await smsc.start()
            options = dict(self.settings.INSTALLED_BACKENDS[self.name], port=port)
            del options["ENGINE"]
            backend = SmppBackend(self.name, **options)
            bound = asyncio.Event()
            backend.state_listeners.append(lambda state, detail: state == "bound" and bound.set())
            await backend.activate()
            try:
                async with asyncio.timeout(SMPP_TIMEOUT):
                    await bound.wait()
                    return await act(smsc, backend)
            finally:
                await backend.deactivate()
                await smsc.close()
                await sync_to_async(connections.close_all)()

        return asyncio.run(run())

    async def answered(self, smsc: FakeSmsc) -> None:
        """The backend's answer to the SMSC's deliver_sm, which must be ESME_ROK: stored."""
        assert (await smsc.answers.get()).command_status == pdu.ESME_ROK

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        """The fake SMSC numbers its message ids from 0x1000, in hexadecimal."""
        return [f"{0x1000 + i:x}" for i in range(len(ids))]

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        return self.bound(lambda smsc, backend: backend.send(messages))

    def deliver(self, identity: str, text: str) -> None:
        """A deliver_sm from `identity`, as the SMSC sends a mobile-originated text."""
        async def handed_over(smsc: FakeSmsc, backend: SmppBackend) -> None:
            smsc.deliver(identity, text)
            await self.answered(smsc)
        self.bound(handed_over)

    @pytest.fixture
    def sent(self) -> Message:
        """A message the SMSC took over a bind, with its id: as the bind's scheduler sends
        it (this process holds no bind, so the send on commit left it queued)."""
        (message,) = smsrouter.send("hi", PHONE, backend=self.name)
        (outcome,) = self.send([message])
        assert outcome.sent
        Message.objects.filter(pk=message.id).update(external_id=outcome.external_id)
        return Message.objects.get(pk=message.id)

    def report(self, message: Message, status: str) -> None:
        """A delivery receipt's deliver_sm for the SMSC's id: DELIVRD, or ENROUTE for sent."""
        async def receipted(smsc: FakeSmsc, backend: SmppBackend) -> None:
            smsc.receipt(message.external_id, {"delivered": "DELIVRD", "sent": "ENROUTE"}[status])
            await self.answered(smsc)
        self.bound(receipted)


INFOBIP_TOKEN = "s3cret-t0ken"


class TestInfobipBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    """Infobip names each message by the messageId the send gave it, its own id."""

    name = "infobip"
    identity_field = "results[0].from"
    refusal = "Infobip E400: Invalid destination address."

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.infobip.InfobipBackend", api_key="k3y",
                     base_url=url, sender="InfoSMS", token=INFOBIP_TOKEN)

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        self.gateway.answer(200, json.dumps({"bulkId": "bulk-1", "messages": [
            {"messageId": str(i), "status": {"groupName": "PENDING", "name": "PENDING_ACCEPTED"}}
            for i in ids]}), headers={"Content-Type": "application/json"})
        return [str(i) for i in ids]

    def send_apart(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """A request per message; an entry refused within one request is in
        tests/test_backend_infobip.py."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(infobip, "MESSAGES_PER_REQUEST", 1)
            return self.send(messages)

    def answer_permanent(self) -> None:
        self.gateway.answer(400, json.dumps({"errorCode": "E400",
                                             "description": "Invalid destination address."}),
                            headers={"Content-Type": "application/json"})

    def post(self, client: Client, path: str, results: list[dict[str, Any]]) -> Any:
        return client.post(path, json.dumps({"results": results}),
                           content_type="application/json")

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        result = {"messageId": "817790313235066447", "to": "385921004026", "text": text}
        if identity is not None:
            result["from"] = identity.removeprefix("+")
        return self.post(client, f"/backend/infobip/?token={INFOBIP_TOKEN}", [result])

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return self.post(client, "/backend/infobip/?token=guess",
                         [{"from": identity.removeprefix("+"), "text": text}])

    def result(self, message: Message, status: str) -> dict[str, Any]:
        group = {"sent": "PENDING", "delivered": "DELIVERED"}[status]
        return {"messageId": message.external_id, "status": {"groupName": group}}

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return self.post(client, f"/backend/infobip/status/?token={INFOBIP_TOKEN}",
                         [self.result(message, status)])

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return self.post(client, "/backend/infobip/status/?token=guess",
                         [self.result(message, status)])


VONAGE_SECRET = "s1gnature-secret"


def vonage_signed(params: dict[str, str], secret: str = VONAGE_SECRET) -> dict[str, str]:
    """The parameters as Vonage sends them: timestamped, signed with md5hash (its default)."""
    params = {**params, "timestamp": "1767225600"}
    return {**params, "sig": vonage_signature(secret, "md5hash", params)}


class TestVonageBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    name = "vonage"
    identity_field = "msisdn"
    refusal = "Vonage status 3: Invalid to address"

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.vonage.VonageBackend", api_key="abcd1234",
                     api_secret="Sup3rSecret", from_number="+447700900001",
                     signature_secret=VONAGE_SECRET, api_url=url)

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        vonage_ids = [f"0B{len(self.gateway.requests) + i:014X}" for i in range(len(ids))]
        for vonage_id in vonage_ids:
            self.gateway.answer(200, json.dumps({"message-count": "1", "messages": [
                {"to": "255700000001", "message-id": vonage_id, "status": "0"}]}),
                headers={"Content-Type": "application/json"})
        return vonage_ids

    def answer_permanent(self) -> None:
        self.gateway.answer(200, json.dumps({"message-count": "1", "messages": [
            {"status": "3", "error-text": "Invalid to address"}]}),
            headers={"Content-Type": "application/json"})

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        params = {"to": "447700900001", "messageId": "0A0000000123ABCD1", "text": text,
                  "type": "text"}
        if identity is not None:
            params["msisdn"] = identity.removeprefix("+")
        return client.post("/backend/vonage/", vonage_signed(params))

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return client.post("/backend/vonage/", vonage_signed(
            {"msisdn": identity.removeprefix("+"), "text": text}, secret="guess"))

    def receipt(self, message: Message, status: str) -> dict[str, str]:
        return {"msisdn": "255700000001", "messageId": message.external_id,
                "status": {"sent": "accepted", "delivered": "delivered"}[status]}

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return client.post("/backend/vonage/status/", vonage_signed(self.receipt(message, status)))

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return client.post("/backend/vonage/status/",
                           vonage_signed(self.receipt(message, status), secret="guess"))


AT_TOKEN = "s3cret-token"


class TestAfricasTalkingBackend(WebhookAuthContract, SendFailureContract, ReportAuthContract):
    """Messages of distinct texts go in a request each, as the contract's do."""

    name = "at"
    identity_field = "from"
    refusal = "InvalidPhoneNumber"

    def configure(self, url: str) -> None:
        self.install(ENGINE="smsrouter.backends.africastalking.AfricasTalkingBackend",
                     username="smsrouter-test", api_key="atsk_k3y", token=AT_TOKEN, api_url=url)

    def recipients(self, *recipients: dict[str, Any], status: int = 201) -> None:
        self.gateway.answer(status, json.dumps({"SMSMessageData": {
            "Message": "Sent to 1/1", "Recipients": list(recipients)}}),
            headers={"Content-Type": "application/json"})

    def accept(self, ids: Sequence[int]) -> list[str | None]:
        at_ids = [f"ATXid_{len(self.gateway.requests) + i}" for i in range(len(ids))]
        for at_id in at_ids:
            self.recipients({"number": PHONE, "statusCode": 101, "status": "Success",
                             "messageId": at_id, "cost": "KES 0.8000"})
        return at_ids

    def answer_permanent(self) -> None:
        self.recipients({"number": PHONE, "statusCode": 403, "status": self.refusal,
                         "messageId": "None", "cost": "0"})

    def inbound(self, client: Client, identity: str | None, text: str) -> Any:
        form = {"to": "22384", "text": text, "date": "2026-12-02 14:00:00",
                "id": "ATXid_in_1", "linkId": "", "networkCode": "63902"}
        return client.post(f"/backend/at/?token={AT_TOKEN}",
                           form if identity is None else {**form, "from": identity})

    def forged_inbound(self, client: Client, identity: str, text: str) -> Any:
        return client.post("/backend/at/?token=guess", {"from": identity, "text": text})

    def status(self, message: Message, status: str) -> dict[str, str]:
        return {"id": message.external_id, "phoneNumber": PHONE,
                "status": {"sent": "Sent", "delivered": "Success"}[status]}

    def report_request(self, client: Client, message: Message, status: str) -> Any:
        return client.post(f"/backend/at/status/?token={AT_TOKEN}", self.status(message, status))

    def forged_report(self, client: Client, message: Message, status: str) -> Any:
        return client.post("/backend/at/status/?token=guess", self.status(message, status))
