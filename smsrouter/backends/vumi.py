"""Vumi's HTTP API (Vumi Go, Junebug): JSON messages in, JSON messages out, events for status.

Vumi cannot sign its requests, so a `token` option puts a shared secret in the URL it
calls: `https://example.org/backend/vumi/?token=...`.
"""

import json
from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse

from smsrouter import httpclient
from smsrouter.backends.base import BaseBackend, Inbound, Outcome, StatusReport, require_token
from smsrouter.exceptions import BadInbound
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

#: Vumi event types and delivery statuses, as our outgoing statuses.
EVENTS = {"ack": Status.SENT, "nack": Status.FAILED}
DELIVERY = {"delivered": Status.DELIVERED, "failed": Status.FAILED, "pending": Status.SENT}


class VumiBackend(BaseBackend):
    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options = {"sendsms_url": str, "sendsms_user": str, "sendsms_pass": str, "token": str}
    required_config = ("sendsms_url",)

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        require_token(request, self.config.get("token"))
        data = _json_object(request)
        identity = data.get("from_addr")
        if not isinstance(identity, str) or not identity:
            raise BadInbound("from_addr", "is required")
        content = data.get("content")
        if content is not None and not isinstance(content, str):
            raise BadInbound("content", "must be a string or null")
        fields = {key: data[key] for key in ("to_addr", "transport_name", "transport_type",
                                             "session_event") if data.get(key) is not None}
        message_id = data.get("message_id")
        return Inbound(identity=identity, text=content or "",
                       external_id=str(message_id) if message_id else None,
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
        require_token(request, self.config.get("token"))
        event = _json_object(request)
        kind = event.get("event_type")
        if kind == "delivery_report":
            status = DELIVERY.get(event.get("delivery_status"))
            if status is None:
                raise BadInbound("delivery_status", "must be delivered, failed or pending")
        elif kind in EVENTS:
            status = EVENTS[kind]
        else:
            raise BadInbound("event_type", "must be ack, nack or delivery_report")
        sent_id = event.get("user_message_id")
        if not sent_id:
            raise BadInbound("user_message_id", "is required")
        error = f"nack: {event.get('nack_reason') or 'no reason given'}" if kind == "nack" else (
            "delivery failed" if status == Status.FAILED else "")
        return [StatusReport(status, "user_message_id", external_id=str(sent_id), error=error)]

    def status_response(self) -> HttpResponse:
        return HttpResponse(b"")


def _json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInbound("body", f"is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BadInbound("body", "must be a JSON object")
    return data
