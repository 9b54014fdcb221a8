"""Africa's Talking: its incoming-message and delivery-report callbacks, its SMS REST API.

Africa's Talking signs none of its callbacks, so the only proof that one came from it is a
shared secret in the URL it was given: the `token` option, checked before the body is read.
Outbound, one request carries every message of the same text (its bulk send), and its
answer lists one status per recipient, matched back to the messages by number.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest

from smsrouter import httpclient
from smsrouter.backends.base import (BaseBackend, Inbound, OptionType, Outcome, StatusReport,
                                     form_data, form_inbound, mapped, require_token, required)
from smsrouter.backends.options import absolute, empty_options
from smsrouter.exceptions import BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

API_URL = "https://api.africastalking.com"
SANDBOX_URL = "https://api.sandbox.africastalking.com"
#: The only username the sandbox takes, whatever the account's own is.
SANDBOX_USERNAME = "sandbox"
SEND_PATH = "/version1/messaging"

#: Per-recipient statusCodes that mean the message was taken (Processed, Sent, Queued).
ACCEPTED = {100, 101, 102}
#: UserInBlacklist: the number asked for no more messages from this sender.
BLACKLISTED = 406
#: A delivery report's failureReason for the same (its docs spell it UserInBlackList, its
#: send answers UserInBlacklist), compared without case.
BLACKLISTED_REASON = "userinblacklist"
#: Recipients per bulk request. Africa's Talking documents no limit; a request that times
#: out may still have been sent, and its retry resends to all its recipients, so a modest
#: cap bounds how many can get a message twice.
RECIPIENTS_PER_REQUEST = 100
#: InsufficientBalance: the account, not the message, is at fault; once it is topped up the
#: same message goes through, so it is retried with backoff rather than failed at once.
INSUFFICIENT_BALANCE = 405

#: Africa's Talking's delivery-report status, as the forward-only statuses of smsrouter.reports.
STATUSES: dict[str, str] = {
    "Sent": Status.SENT,
    "Submitted": Status.SENT,
    "Buffered": Status.SENT,
    "Success": Status.DELIVERED,
    "Rejected": Status.FAILED,
    "Failed": Status.FAILED,
    "AbsentSubscriber": Status.FAILED,
    "Expired": Status.FAILED,
}
#: Inbound fields kept under fields["africastalking"], beyond from, text and id.
INBOUND_DETAILS = ("to", "date", "linkId", "networkCode")


class AfricasTalkingBackend(BaseBackend):
    """Africa's Talking's SMS callback at /backend/<name>/?token=..., its delivery reports
    at .../status/?token=..., and its bulk SMS API for sends."""

    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options: ClassVar[dict[str, OptionType]] = {
        "username": str,
        "api_key": str,
        "sender_id": str,
        "sandbox": bool,
        "api_url": str,
        "token": str,
    }
    required_config = ("username", "api_key", "token")

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """Beyond the common checks: no empty secret, the sandbox's username, a usable api_url."""
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        errors += empty_options(name, given, [
            ("username", "E100", "Africa's Talking refuses every send without it", None),
            ("api_key", "E101", "Africa's Talking refuses every send without it", None),
            ("token", "E102", "no callback could prove it came from Africa's Talking", None),
        ])
        username = given.get("username")
        if given.get("sandbox") is True and isinstance(username, str) and username and (
                username != SANDBOX_USERNAME):
            errors.append(Error(
                f"Backend {name!r}: sandbox is on, but username is {username!r}.",
                hint="Africa's Talking's sandbox takes only the username 'sandbox', with "
                "the API key generated in the sandbox app.",
                id="smsrouter.E103"))
        api_url = given.get("api_url")
        if isinstance(api_url, str) and not absolute(api_url):
            errors.append(Error(
                f"Backend {name!r}: api_url {api_url!r} is not an absolute http(s) URL.",
                hint=f"Leave api_url out to use {API_URL!r} (or the sandbox's); "
                "set it only to test against a stand-in.",
                id="smsrouter.E104"))
        return errors

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """Refuse a callback whose URL lacks the token, before its body is read."""
        token = self.config.get("token")
        if not token:  # smsrouter.E102 reports it; meanwhile nothing is believed
            raise BadSignature("token is not set, so no callback can be accepted")
        require_token(request.GET, token)

    # Inbound messages.
    def parse_inbound(self, request: HttpRequest) -> Inbound:
        """A message Africa's Talking forwards; its `id` dedupes the callbacks it retries."""
        data = form_data(request)
        inbound = form_inbound(request, "from", "text")
        inbound.external_id = data.get("id") or None
        inbound.fields = {"africastalking": {key: data.get(key, "") for key in INBOUND_DETAILS}}
        return inbound

    # Delivery reports.
    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """Africa's Talking's word on one message, found by the messageId it gave at send."""
        data = form_data(request)
        message_id = required(data, "id")
        at_status = data.get("status", "")
        status = mapped(at_status, "status", STATUSES, "a delivery status")
        if status != Status.FAILED:
            return [StatusReport(status, "id", external_id=message_id)]
        reason = data.get("failureReason", "")
        error = f"Africa's Talking: {at_status} ({reason})" if reason else (
            f"Africa's Talking: {at_status}")
        return [StatusReport(status, "id", external_id=message_id, error=error,
                             opted_out=reason.lower() == BLACKLISTED_REASON)]

    # Outbound messages.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One request per distinct text, to its recipients, RECIPIENTS_PER_REQUEST at most;
        the rest is send_parts'."""
        by_text: dict[str, list[int]] = defaultdict(list)
        for index, msg in enumerate(messages):
            by_text[msg.text].append(index)
        groups = [indexes[i:i + RECIPIENTS_PER_REQUEST] for indexes in by_text.values()
                  for i in range(0, len(indexes), RECIPIENTS_PER_REQUEST)]
        outcomes = await self.send_parts([[messages[i] for i in group] for group in groups],
                                         self._send_bulk)
        order = [index for group in groups for index in group]
        by_index = dict(zip(order, outcomes))
        return [by_index[index] for index in range(len(messages))]

    def api_url(self) -> str:
        """Where the API is: api_url if set, else production or the sandbox."""
        if url := self.config.get("api_url"):
            return url.rstrip("/")
        return SANDBOX_URL if self.config.get("sandbox") else API_URL

    def request_form(self, messages: Sequence[OutgoingMessage]) -> dict[str, str]:
        """The form that sends one text to each message's number."""
        form = {
            "username": self.config["username"],
            "to": ",".join(msg.connection.identity for msg in messages),
            "message": messages[0].text,
            # What Africa's Talking's own library sends: bulk (the sender pays), not premium.
            "bulkSMSMode": "1",
        }
        if sender := self.config.get("sender_id"):
            form["from"] = sender
        return form

    async def _send_bulk(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One request for messages of one text; each takes its number's entry of the answer."""
        answer = await httpclient.request(
            "POST", self.api_url() + SEND_PATH, data=self.request_form(messages),
            headers={"apiKey": self.config["api_key"], "Accept": "application/json"},
            timeout=self.config.get("timeout"),
        )
        answer.raise_for_status()
        recipients = _recipients(answer)
        if len(messages) == 1 and sum(map(len, recipients.values())) == 1:
            # Africa's Talking names numbers in its own format (a local 0711... comes back
            # as +254711...): with one number each way, the entry can only be this message's.
            return [_outcome(next(iter(recipients.values()))[0], answer)]
        return [_outcome(recipients[msg.connection.identity].pop(0), answer)
                if recipients.get(msg.connection.identity) else
                Outcome(error=f"{answer.where} gave no status for {msg.connection.identity}")
                for msg in messages]


def _recipients(answer: httpclient.Answer) -> dict[str, list[Mapping[str, Any]]]:
    """SMSMessageData.Recipients by number, in order; PermanentSendError if the answer has
    none, as then nothing proves that any message was taken (a proxy's page, a wrong api_url)."""
    try:
        listed = answer.json()["SMSMessageData"]["Recipients"]
        if not isinstance(listed, list):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise PermanentSendError(f"{answer.where} answered {answer.status} without "
                                 f"SMSMessageData.Recipients: {answer.text[:300]}") from None
    by_number: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for recipient in listed:
        if isinstance(recipient, dict):
            by_number[str(recipient.get("number", ""))].append(recipient)
    return by_number


def _outcome(recipient: Mapping[str, Any], answer: httpclient.Answer) -> Outcome:
    """One recipient's statusCode as an Outcome: sent, refused, or worth a retry."""
    code = recipient.get("statusCode")
    if code in ACCEPTED:
        message_id = recipient.get("messageId")
        return Outcome(external_id=message_id if isinstance(message_id, str) else None)
    error = f"Africa's Talking {code}: {recipient.get('status', '')} ({answer.where})"
    if code == BLACKLISTED:
        return Outcome(error=error, opted_out=True)
    temporary = code == INSUFFICIENT_BALANCE or (isinstance(code, int) and code >= 500)
    return Outcome(error=error, temporary=temporary)
