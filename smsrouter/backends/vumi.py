"""Vumi's HTTP API (Vumi Go, Junebug): JSON messages in, JSON messages out, events for status.

Vumi cannot sign its requests, so a `token` option puts a shared secret in the URL it
calls: `https://example.org/backend/vumi/?token=...`.
"""

from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse

from smsrouter import httpclient
from smsrouter.backends.base import BaseBackend, Inbound, Outcome, StatusReport, require_token
from smsrouter.backends.jsonbody import json_object, json_type
from smsrouter.exceptions import BadInbound
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

#: The keys of an inbound message kept in its fields (under "vumi"): strings or null.
KEPT = ("to_addr", "transport_name", "transport_type", "session_event")
#: Vumi event types and delivery statuses, as our outgoing statuses.
EVENTS = {"ack": Status.SENT, "nack": Status.FAILED}
DELIVERY = {"delivered": Status.DELIVERED, "failed": Status.FAILED, "pending": Status.SENT}


class VumiBackend(BaseBackend):
    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options = {"sendsms_url": str, "sendsms_user": str, "sendsms_pass": str, "token": str}
    required_config = ("sendsms_url",)

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """The `token` option, when set, must be in the URL of messages and events alike."""
        require_token(request.GET, self.config.get("token"))

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        data = json_object(request)
        identity = data.get("from_addr")
        if not isinstance(identity, str) or not identity:
            raise BadInbound("from_addr", "is required, a string")
        content = data.get("content")
        if content is not None and not isinstance(content, str):
            raise BadInbound("content", "must be a string or null")
        fields = {}
        for key in KEPT:
            if (value := data.get(key)) is None:
                continue
            if not isinstance(value, str):
                raise BadInbound(key, f"must be a string or null, not {json_type(value)}")
            fields[key] = value
        return Inbound(identity=identity, text=content or "",
                       external_id=_message_id(data, "message_id"),
                       fields={"vumi": fields} if fields else {})

    def inbound_response(self) -> HttpResponse:
        return HttpResponse(b"")

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One POST per message: Vumi takes one address each."""
        return await self.send_each(messages, self._post)

    async def _post(self, message: OutgoingMessage) -> str | None:
        payload: dict[str, Any] = {
            "content": message.text,
            "to_addr": message.connection.identity,
            "session_event": None,
            "metadata": {"smsrouter_id": message.id},
        }
        if message.in_response_to is not None and message.in_response_to.record.external_id:
            payload["in_reply_to"] = message.in_response_to.record.external_id
        user, password = self.config.get("sendsms_user"), self.config.get("sendsms_pass")
        answer = await httpclient.request("POST", self.config["sendsms_url"], json=payload,
                                    auth=(user, password or "") if user else None,
                                          timeout=self.config.get("timeout"))
        answer.raise_for_status()
        try:
            sent_id = answer.json().get("message_id")
        except (ValueError, AttributeError):
            return None
        return str(sent_id) if sent_id else None

    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        event = json_object(request)
        kind = _string(event, "event_type")
        if kind == "delivery_report":
            status = DELIVERY.get(_string(event, "delivery_status"))
            if status is None:
                raise BadInbound("delivery_status", "must be delivered, failed or pending")
        elif kind in EVENTS:
            status = EVENTS[kind]
        else:
            raise BadInbound("event_type", "must be ack, nack or delivery_report")
        sent_id = _message_id(event, "user_message_id")
        if sent_id is None:
            raise BadInbound("user_message_id", "is required")
        reason = _string(event, "nack_reason") or "no reason given"
        error = f"nack: {reason}" if kind == "nack" else (
            "delivery failed" if status == Status.FAILED else "")
        return [StatusReport(status, "user_message_id", external_id=sent_id, error=error)]

    def status_response(self) -> HttpResponse:
        return HttpResponse(b"")


def _string(data: dict[str, Any], key: str) -> str | None:
    """data[key] if it is a string; None if it is missing or anything else."""
    value = data.get(key)
    return value if isinstance(value, str) else None


def _message_id(data: dict[str, Any], key: str) -> str | None:
    """A message id, which Vumi gives as a string (a number is taken too); None if absent."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadInbound(key, f"must be a string, not {json_type(value)}")
    return value
