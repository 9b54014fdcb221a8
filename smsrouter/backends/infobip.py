"""Infobip's SMS API: forwarded MOs in, /sms/3/messages out, delivery reports back.

Infobip neither signs the messages it forwards nor its delivery reports, and documents no
credentials for the URL it forwards to: a shared `token` in that URL is the only proof a
request came from Infobip, so it is required. Outbound uses /sms/3/messages, the send API
Infobip documents as current and its official library (infobip-api-python-client 6) calls,
rather than the older /sms/2/text/advanced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest

from smsrouter import httpclient
from smsrouter.backends.base import (BaseBackend, Inbound, OptionType, Outcome, StatusReport,
                                     mapped, request_body, require_token)
from smsrouter.backends.options import absolute, empty_options
from smsrouter.exceptions import BadInbound, BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

SEND_PATH = "/sms/3/messages"
#: Messages per request. Infobip takes many "messages" entries in one request; this bounds
#: how much one refused or lost request fails at once.
MESSAGES_PER_REQUEST = 100
#: Hosts for which base_url may be plain http: a stand-in on this machine, as the
#: official library allows too.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: A status groupName (Infobip's "Response status and error codes") as the forward-only
#: statuses of smsrouter.reports.
STATUSES: dict[str, str] = {
    "ACCEPTED": Status.SENT,
    "PENDING": Status.SENT,
    "DELIVERED": Status.DELIVERED,
    "UNDELIVERABLE": Status.FAILED,
    "EXPIRED": Status.FAILED,
    "REJECTED": Status.FAILED,
}
#: Groups in which Infobip has taken a message it was sent.
TAKEN_GROUPS = frozenset({"ACCEPTED", "PENDING", "DELIVERED"})
#: The status for a number on a do-not-disturb list: nothing may go to it, as after a STOP.
OPTED_OUT_STATUSES = frozenset({"REJECTED_DND"})
#: What a forwarded MO keeps of Infobip's fields, in fields["infobip"].
KEPT_FIELDS = ("to", "receivedAt", "keyword", "smsCount")


class InfobipBackend(BaseBackend):
    """Infobip's MO forwarding at /backend/<name>/, its delivery reports at .../status/."""

    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options: ClassVar[dict[str, OptionType]] = {
        "api_key": str,
        "base_url": str,
        "sender": str,
        "token": str,
    }
    required_config = ("api_key", "base_url", "token")

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """Beyond the common checks: an account base URL, and no empty key or token."""
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        base_url = given.get("base_url")
        if isinstance(base_url, str):
            errors += _check_base_url(name, base_url)
        return errors + empty_options(name, given, [
            ("api_key", "E112", "Infobip refuses every send",
             "Create an API key in the Infobip portal (Developer tools, API keys)."),
            ("token", "E113", "anyone could post messages and reports",
             "Set a long random string, and add ?token=<it> to both webhook URLs."),
            ("sender", "E114", "it is ignored and Infobip picks a sender",
             "Give a sender your account may use, or remove the option."),
        ])

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """Both webhooks carry the token in their URL: refuse a request without it first."""
        token = self.config.get("token")
        if not token:
            raise BadSignature("token is not set, so no request can be believed")
        require_token(request.GET, token)

    # Inbound messages.
    def parse_inbound(self, request: HttpRequest) -> list[Inbound]:
        """An Inbound per message of the forward; one bad message refuses them all."""
        return [_inbound(item, f"results[{i}]")
                for i, item in enumerate(_results(request))]

    # Delivery reports.
    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """A report per message, found by the messageId the send gave it: its own id."""
        return [_report(item, f"results[{i}]") for i, item in enumerate(_results(request))]

    # Outbound messages.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """Up to MESSAGES_PER_REQUEST messages per request, each its own "messages" entry
        with its id as the messageId, so that each gets its own outcome and report."""
        parts = [messages[i:i + MESSAGES_PER_REQUEST]
                 for i in range(0, len(messages), MESSAGES_PER_REQUEST)]
        return await self.send_parts(parts, self._send_part)

    def send_body(self, messages: Sequence[OutgoingMessage]) -> dict[str, Any]:
        """The /sms/3/messages request for these messages. Numbers go without "+", in the
        international form Infobip documents; without `sender`, Infobip picks one."""
        entries = []
        for message in messages:
            entry: dict[str, Any] = {
                "destinations": [{"to": message.connection.identity.removeprefix("+"),
                                  "messageId": str(message.id)}],
                "content": {"text": message.text},
            }
            if sender := self.config.get("sender"):
                entry["sender"] = sender
            entries.append(entry)
        return {"messages": entries}

    async def _send_part(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        answer = await httpclient.request(
            "POST", self.config["base_url"].rstrip("/") + SEND_PATH,
            json=self.send_body(messages),
            headers={"Authorization": f"App {self.config['api_key']}",
                     "Accept": "application/json"},
            timeout=self.config.get("timeout"),
        )
        answer.raise_for_status(detail=_infobip_error(answer))
        by_id = _answered(answer)
        return [_outcome(by_id.get(str(message.id)), str(message.id)) for message in messages]


def _check_base_url(name: str, value: str) -> list[CheckMessage]:
    """The account's API base URL, e.g. https://xxxxx.api.infobip.com: paths follow it."""
    parts = absolute(value)
    if parts is None or not (parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS):
        return [Error(f"Backend {name!r}: base_url {value!r} is not an absolute https URL.",
                      hint="Copy the base URL from the Infobip portal's homepage, e.g. "
                      "'https://xxxxx.api.infobip.com'.", id="smsrouter.E110")]
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return [Error(f"Backend {name!r}: base_url {value!r} has a path, query or fragment.",
                      hint="Give the account's base URL alone; the backend adds "
                      f"{SEND_PATH} itself.", id="smsrouter.E111")]
    return []


def _results(request: HttpRequest) -> list[Any]:
    """The body's `results`, for both webhooks."""
    try:
        body = json.loads(request_body(request))
    except ValueError as exc:
        raise BadInbound("body", f"is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadInbound("body", "must be a JSON object")
    if "results" not in body:
        raise BadInbound("results", "is required")
    results = body["results"]
    if not isinstance(results, list):
        raise BadInbound("results", "must be a list")
    return results


def _object(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise BadInbound(where, "must be a JSON object")
    return item


def _string(item: Mapping[str, Any], where: str, name: str, *, required: bool) -> str | None:
    """A string field; None when an optional one is absent or null."""
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadInbound(f"{where}.{name}", "is required" if value is None else
                         f"must be a string, not {type(value).__name__}")
    return value


def _inbound(raw: Any, where: str) -> Inbound:
    """One forwarded MO. Infobip gives numbers in international form without "+"."""
    item = _object(raw, where)
    sender = (_string(item, where, "from", required=True) or "").strip()
    if not sender:
        raise BadInbound(f"{where}.from", "is required")
    if "text" not in item:
        raise BadInbound(f"{where}.text", "is required (it may be empty)")
    text = _string(item, where, "text", required=True) or ""
    return Inbound(
        identity="+" + sender if sender.isascii() and sender.isdigit() else sender,
        text=text,
        external_id=_string(item, where, "messageId", required=False) or None,  # retries
        fields={"infobip": {key: item[key] for key in KEPT_FIELDS if key in item}},
    )


def _report(raw: Any, where: str) -> StatusReport:
    item = _object(raw, where)
    message_id = _string(item, where, "messageId", required=True) or ""
    if not message_id:
        raise BadInbound(f"{where}.messageId", "is required")
    status = _object(item.get("status"), f"{where}.status")
    ours = mapped(status.get("groupName"), f"{where}.status.groupName", STATUSES,
                  "a status group of a delivery report")
    if ours != Status.FAILED:
        return StatusReport(ours, f"{where}.messageId", external_id=message_id)
    return StatusReport(ours, f"{where}.messageId", external_id=message_id,
                        error=_reason(status, item.get("error")),
                        opted_out=status.get("name") in OPTED_OUT_STATUSES)


def _reason(status: Mapping[str, Any], error: Any) -> str:
    """Why Infobip failed a message: its status name and, when it gives one, the error."""
    reason = f"Infobip {status.get('groupName')}: {status.get('name') or 'no status name'}"
    if isinstance(error, dict) and error.get("name") not in (None, "NO_ERROR"):
        reason += f" ({error.get('name')}: {error.get('description') or 'no description'})"
    elif status.get("description"):
        reason += f" ({status['description']})"
    return reason


def _answered(answer: httpclient.Answer) -> dict[str, Mapping[str, Any]]:
    """The answer's messages by messageId; PermanentSendError when it has none, as then
    nothing proves that Infobip took a message (a proxy's page, a wrong base_url)."""
    try:
        entries = answer.json().get("messages")
    except (ValueError, AttributeError):
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PermanentSendError(f"{answer.where} answered {answer.status} without "
                                 f"Infobip's messages: {answer.text[:300]}")
    return {str(entry.get("messageId")): entry for entry in entries}


def _outcome(entry: Mapping[str, Any] | None, message_id: str) -> Outcome:
    """One message's outcome from its entry in the answer."""
    if entry is None:
        return Outcome(error=f"Infobip's answer has no entry for messageId {message_id}")
    status = entry.get("status")
    if not isinstance(status, dict):
        return Outcome(error=f"Infobip's answer gives messageId {message_id} no status")
    if status.get("groupName") in TAKEN_GROUPS:
        return Outcome(external_id=message_id)
    return Outcome(error=_reason(status, None),
                   opted_out=status.get("name") in OPTED_OUT_STATUSES)


def _infobip_error(answer: httpclient.Answer) -> str | None:
    """Infobip's own words for a refused request: the v3 errorCode and description, or the
    older requestError.serviceException."""
    try:
        body = answer.json()
        if "errorCode" in body:
            return f"Infobip {body['errorCode']}: {body.get('description') or 'no description'}"
        exception = body["requestError"]["serviceException"]
        return f"Infobip {exception['messageId']}: {exception['text']}"
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
