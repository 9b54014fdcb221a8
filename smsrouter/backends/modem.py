"""A GSM modem, through the bridge process that owns it (`smsrouter-modem`).

A modem on a serial port cannot live in a web request, so a bridge of its own holds it,
perhaps on another machine, and both sides speak HTTP: the bridge posts each SMS it read
to /backend/<name>/ and each status report to .../status/, and this backend posts sends
to the bridge's /send. One secret, the `token` option, proves each side to the other as
`Authorization: Bearer <token>`, checked before a byte of the body is read.

A long SMS arrives as its parts, one post each, and is stored and joined by
smsrouter.parts; each post carries an id the bridge made from the PDU, the same however
often it is posted, so a repost after a restart is answered and not routed again.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.core.checks import CheckMessage, Error
from django.http import HttpRequest

from smsrouter import httpclient, reports
from smsrouter.backends.base import (BaseBackend, Inbound, OptionType, Outcome, PartOf,
                                     StatusReport, mapped, required)
from smsrouter.backends.jsonbody import json_object, json_type
from smsrouter.backends.options import absolute
from smsrouter.exceptions import BadInbound, BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

#: A status report's state, as the bridge gives it, as our forward-only statuses.
STATUSES: dict[str, str] = {
    "pending": Status.SENT,
    "delivered": Status.DELIVERED,
    "failed": Status.FAILED,
}
#: TP-ST values of a failed SMS (3GPP TS 23.040 9.2.3.15), for the message's error.
FAILURES = {
    0x40: "remote procedure error", 0x41: "incompatible destination",
    0x42: "connection rejected by the phone", 0x43: "not obtainable",
    0x44: "quality of service not available", 0x45: "no interworking available",
    0x46: "validity period expired", 0x47: "deleted by the sender",
    0x48: "deleted by the service centre", 0x49: "the SMS does not exist",
    0x60: "congestion", 0x61: "the phone is busy", 0x62: "no response from the phone",
    0x63: "service rejected", 0x64: "quality of service not available",
    0x65: "error in the phone",
}


class ModemBackend(BaseBackend):
    """A GSM modem behind `smsrouter-modem`: its posts at /backend/<name>/ and .../status/,
    sends to its `bridge_url`."""

    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options: ClassVar[dict[str, OptionType]] = {"bridge_url": str, "token": str}
    #: A modem sends one SMS at a time, and the bridge queues the rest behind it.
    default_concurrency = 2

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """Beyond the common checks: a token, and a bridge URL sends can reach."""
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        if not given.get("token"):
            errors.append(Error(
                f"Backend {name!r}: a ModemBackend needs a token, or anyone could post "
                "messages as the modem.",
                hint="Set 'token' to a long random string, and give the bridge the same "
                "with --token.", id="smsrouter.E130"))
        url = given.get("bridge_url")
        if not isinstance(url, str) or absolute(url) is None:
            errors.append(Error(
                f"Backend {name!r}: a ModemBackend needs bridge_url, the absolute http(s) "
                f"URL the bridge listens at, not {url!r}.",
                hint="Set 'bridge_url': 'http://127.0.0.1:8765', the bridge's --listen.",
                id="smsrouter.E131"))
        return errors

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """Both posts carry the token as a bearer credential: refuse one without it first."""
        token = self.config.get("token")
        if not token:
            raise BadSignature("token is not set, so no request can be believed")
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            raise BadSignature("Authorization: Bearer <token> is missing or wrong")

    # Inbound messages.
    def parse_inbound(self, request: HttpRequest) -> Inbound:
        """One SMS, or one part of a long one, as the bridge read it from the SIM."""
        data = json_object(request)
        message_id, identity = required(data, "id"), required(data, "from")
        text = data.get("text")
        if not isinstance(text, str):
            raise BadInbound("text", "is required, a string (it may be empty)")
        timestamp = data.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, str):
            raise BadInbound("timestamp", f"must be a string, not {json_type(timestamp)}")
        return Inbound(identity=identity, text=text, external_id=message_id,
                       fields={"modem": {"timestamp": timestamp}} if timestamp else {},
                       part=_part(data.get("part")))

    # Delivery reports.
    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """A status report, found by the external id the bridge gave the part at send."""
        data = json_object(request)
        reference = required(data, "reference")
        status = mapped(data.get("status"), "status", STATUSES, "a status report's state")
        code = data.get("code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)
                                 or not 0 <= code <= 255):
            raise BadInbound("code", "must be a TP-ST value from 0 to 255, or null")
        error = ""
        if status == Status.FAILED:
            error = "modem: status report failed" if code is None else (
                f"modem: status report TP-ST 0x{code:02X} ({FAILURES.get(code, 'failed')})")
        return [StatusReport(status, "reference", external_id=reference, error=error)]

    # Outbound messages.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One /send per message: the bridge answers once the modem took every part."""
        return await self.send_each(messages, self._post)

    async def _post(self, message: OutgoingMessage) -> str | None:
        answer = await httpclient.request(
            "POST", self.config["bridge_url"].rstrip("/") + "/send",
            json={"id": str(message.id), "to": message.connection.identity,
                  "text": message.text},
            headers={"Authorization": f"Bearer {self.config.get('token', '')}"},
            timeout=self.config.get("timeout"))
        answer.raise_for_status(detail=_bridge_error(answer))
        try:
            references = answer.json()["references"]
            if not references or not all(isinstance(r, str) for r in references):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            raise PermanentSendError(f"{answer.where} answered {answer.status} without "
                                     f"the parts' references: {answer.text[:300]}") from None
        if len(references) > 1 and message.id is not None:
            # In the thread the sender writes from (thread-sensitive), on its connection.
            await sync_to_async(reports.keep_part_ids)(message.id, references)
        return references[0]


def _part(raw: Any) -> PartOf | None:
    """Where a part belongs, from the bridge's {reference, total, seqnum}; None for a
    whole SMS."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadInbound("part", f"must be an object or null, not {json_type(raw)}")
    numbers = {}
    for key, ceiling in (("reference", 65535), ("total", 255), ("seqnum", 255)):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ceiling:
            raise BadInbound(f"part.{key}", f"must be a whole number from 0 to {ceiling}")
        numbers[key] = value
    if not 1 <= numbers["seqnum"] <= numbers["total"]:
        raise BadInbound("part.seqnum", f"is {numbers['seqnum']}, but part.total says "
                         f"{numbers['total']} parts")
    return PartOf(str(numbers["reference"]), numbers["total"], numbers["seqnum"])


def _bridge_error(answer: httpclient.Answer) -> str | None:
    """The bridge's {"error": ...}, for the message's error."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) else None
