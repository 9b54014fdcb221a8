"""Twilio Programmable Messaging: signed webhooks in, the REST API out, status callbacks back.

Twilio signs every webhook with the account's auth token (X-Twilio-Signature), so a request
is checked before any of its fields is believed. Replies do not ride on the webhook's TwiML
answer: they go out through the REST API like any other message, which gives each one a
MessageSid and a delivery report.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from smsrouter import httpclient
from smsrouter.backends.base import (BaseBackend, Inbound, OptionType, Outcome, StatusReport,
                                     form_data, form_inbound, mapped, required)
from smsrouter.backends.options import absolute, empty_options
from smsrouter.exceptions import BadInbound, BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

API_URL = "https://api.twilio.com"
#: Twilio's error for a number that sent it STOP: nothing may go to it until it sends START.
UNSUBSCRIBED = 21610
SIGNATURE_HEADER = "X-Twilio-Signature"
#: The most media one message can carry: Twilio's limit, which NumMedia may not pass.
MAX_MEDIA = 10
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: Twilio's MessageStatus, as the forward-only statuses of smsrouter.delivery.
STATUSES: dict[str, str] = {
    "accepted": Status.QUEUED,
    "scheduled": Status.QUEUED,
    "queued": Status.QUEUED,
    "sending": Status.SENDING,
    "sent": Status.SENT,
    "partially_delivered": Status.SENT,  # out, but not confirmed whole: a later word decides
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}


def signature(auth_token: str, url: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """The X-Twilio-Signature of a POST to `url` with these form parameters.

    HMAC-SHA1, keyed with the auth token, over the URL followed by each parameter's name
    and value, sorted by name. A repeated parameter contributes each distinct value once,
    in sorted order: that is what Twilio's own library (twilio.request_validator) computes,
    so a request it accepts is accepted here too.
    """
    payload = url
    for name in sorted(params):
        values = params[name]
        for value in sorted({values} if isinstance(values, str) else set(values)):
            payload += name + value
    # A body in another charset (utf-7, say) can decode to lone surrogates, which no real
    # Twilio request holds: encoded as they are, so such a request is checked like any
    # other instead of raising (a 500).
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8", "surrogatepass"),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioBackend(BaseBackend):
    """Twilio's messaging webhook at /backend/<name>/, its status callback at .../status/."""

    inbound_methods = ("POST",)
    status_methods = ("POST",)
    options: ClassVar[dict[str, OptionType]] = {
        "account_sid": str,
        "auth_token": str,
        "from_number": str,
        "messaging_service_sid": str,
        "api_url": str,
        "public_url": str,
        "validate_signature": bool,
    }
    required_config = ("account_sid", "auth_token")

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """Beyond the common checks: one sender, real sids, and URLs that paths can follow."""
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        senders = [key for key in ("from_number", "messaging_service_sid") if given.get(key)]
        if not senders:
            errors.append(Error(
                f"Backend {name!r} needs a sender: from_number or messaging_service_sid.",
                hint="Add 'from_number': '+15017122661' (a number of your Twilio account), "
                "or 'messaging_service_sid': 'MG...' to send through a Messaging Service.",
                id="smsrouter.E050",
            ))
        elif len(senders) == 2:
            errors.append(Error(
                f"Backend {name!r} has both from_number and messaging_service_sid.",
                hint="Keep one: Twilio takes a message either From a number or through "
                "a Messaging Service, which picks the number itself.",
                id="smsrouter.E051",
            ))
        errors += _check_sid(name, "account_sid", given.get("account_sid"), "AC", "E052")
        service = given.get("messaging_service_sid") or None  # "" means no service
        errors += _check_sid(name, "messaging_service_sid", service, "MG", "E053")
        errors += empty_options(name, given, [(
            "auth_token", "E054", "anyone could sign a webhook",
            "Copy the Auth Token from the Twilio console's account dashboard.")])
        errors += _check_url(name, "public_url", given.get("public_url"), "E055",
                             "Give the base URL Twilio reaches this site at, "
                             "e.g. 'https://sms.example.com'.")
        errors += _check_url(name, "api_url", given.get("api_url"), "E056",
                             f"Leave api_url out to use {API_URL!r}; "
                             "set it only to test against a stand-in.")
        # 'validate_signature': False is for development: `check --deploy` warns of it
        # (smsrouter.W050, in smsrouter.checks), with the URLs it leaves open.
        return errors

    # Inbound messages.
    def parse_inbound(self, request: HttpRequest) -> Inbound:
        """An SMS Twilio forwards; the signature is checked before any field is read."""
        self.verify_signature(request)
        data = form_data(request)
        inbound = form_inbound(request, "From", "Body")
        inbound.external_id = data.get("MessageSid") or None  # Twilio retries; route once
        inbound.fields = {"to": data.get("To", ""), "twilio": _media(data)}
        return inbound

    def inbound_response(self) -> HttpResponse:
        """Empty TwiML: replies go out through the REST API, each with its own MessageSid."""
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")

    # Status callbacks.
    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """Twilio's word on one message, found by its MessageSid; signature first again."""
        self.verify_signature(request)
        data = form_data(request)
        sid = required(data, "MessageSid")
        twilio_status = data.get("MessageStatus", "")
        status = mapped(twilio_status, "MessageStatus", STATUSES,
                        "a status of an outgoing message")
        error = ""
        if status == Status.FAILED:
            code = data.get("ErrorCode")
            error = f"Twilio error {code} ({twilio_status})" if code else f"Twilio: {twilio_status}"
        return [StatusReport(status, "MessageSid", external_id=sid, error=error)]

    def status_response(self) -> HttpResponse:
        """Twilio wants any 2xx and reads no body."""
        return HttpResponse(status=204)

    def verify_signature(self, request: HttpRequest) -> None:
        """Raise BadSignature unless Twilio signed this request with our auth token.

        Twilio signs the URL it was told to call. Behind a proxy or tunnel that is not the
        URL Django sees, so `public_url` stands in for Django's idea of scheme and host.
        Twilio signs some URLs with the default port and some without; like its library,
        either form is accepted.
        """
        if not self.config.get("validate_signature", True):
            return
        token = self.config.get("auth_token")
        if not token:
            raise BadSignature("auth_token is not set, so no signature can be checked")
        given = request.headers.get(SIGNATURE_HEADER, "").encode()
        if not given:
            raise BadSignature(f"{SIGNATURE_HEADER} header is missing")
        url = self.signed_url(request)
        params = dict(form_data(request).lists())
        if not any(hmac.compare_digest(signature(token, candidate, params).encode(), given)
                   for candidate in _with_and_without_port(url)):
            raise BadSignature(
                f"{SIGNATURE_HEADER} does not match a POST to {url}; check auth_token, "
                "and public_url if Twilio calls another URL (a proxy or tunnel)"
            )

    def signed_url(self, request: HttpRequest) -> str:
        """The URL Twilio called, as it signed it."""
        if public_url := self.config.get("public_url"):
            return public_url.rstrip("/") + request.get_full_path()
        return request.build_absolute_uri()

    # Outbound messages.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One REST call per message (Twilio has no bulk send), a few at a time.

        A message Twilio refuses fails alone, with Twilio's error code and message; one it
        could not take (unreachable, 429, 5xx) fails alone too, as temporary.
        """
        callback = self.status_callback_url()

        async def part(single: Sequence[OutgoingMessage]) -> list[Outcome]:
            return [await self._send_one(single[0], callback)]

        return await self.send_parts([[msg] for msg in messages], part)

    def status_callback_url(self) -> str | None:
        """Where Twilio reports each message's fate; None without public_url to reach us."""
        if public_url := self.config.get("public_url"):
            return public_url.rstrip("/") + reverse("smsrouter:status", args=[self.name])
        return None

    async def _send_one(self, msg: OutgoingMessage, callback: str | None) -> Outcome:
        """Send one message: Twilio's sid for it, or its refusal because the number
        opted out (error 21610, "Attempt to send to unsubscribed recipient")."""
        account_sid = self.config["account_sid"]
        api_url = self.config.get("api_url", API_URL).rstrip("/")
        form = {"To": msg.connection.identity, "Body": msg.text}
        if sender := self.config.get("from_number"):
            form["From"] = sender
        else:
            form["MessagingServiceSid"] = self.config["messaging_service_sid"]
        if callback:
            form["StatusCallback"] = callback
        answer = await httpclient.request(
            "POST", f"{api_url}/2010-04-01/Accounts/{account_sid}/Messages.json",
            data=form, auth=(account_sid, self.config["auth_token"]), timeout=self.config.get("timeout"),
        )
        if 400 <= answer.status < 500 and _twilio_code(answer) == UNSUBSCRIBED:
            return Outcome(error=f"{answer.where} answered {answer.status}: "
                           f"{_twilio_error(answer)}", opted_out=True)
        answer.raise_for_status(detail=_twilio_error(answer))
        return Outcome(external_id=_sid(answer))


def _sid(answer: httpclient.Answer) -> str:
    """The new message's sid; PermanentSendError if the answer has none, as then nothing
    proves that Twilio took the message (a proxy's page, a wrong api_url)."""
    try:
        sid = answer.json().get("sid")
    except (ValueError, AttributeError):
        sid = None
    if not isinstance(sid, str) or not sid:
        raise PermanentSendError(
            f"{answer.where} answered {answer.status} without a message sid: {answer.text[:300]}")
    return sid


def _twilio_code(answer: httpclient.Answer) -> object:
    try:
        return answer.json().get("code")
    except (ValueError, AttributeError):
        return None


def _twilio_error(answer: httpclient.Answer) -> str | None:
    """Twilio's own words for a refusal: "Twilio error 21211: The 'To' number ..."."""
    try:
        body = answer.json()
        return f"Twilio error {body['code']}: {body['message']}"
    except (ValueError, TypeError, KeyError):
        return None


def _media(data: Mapping[str, str]) -> dict[str, Any]:
    """What an MMS carries beyond its text: the media Twilio stores for it, by URL."""
    raw = data.get("NumMedia") or "0"
    # ASCII digits only: str.isdigit() takes "²", which int() refuses, and "٣".
    if not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_MEDIA):
        raise BadInbound("NumMedia", f"must be a whole number from 0 to {MAX_MEDIA}, "
                         f"not {raw[:40]!r}")
    count = int(raw)
    details: dict[str, Any] = {"num_media": count}
    if count:
        details["media"] = [
            {"url": data.get(f"MediaUrl{i}", ""),
             "content_type": data.get(f"MediaContentType{i}", "")}
            for i in range(count)
        ]
    return details


def _with_and_without_port(url: str) -> set[str]:
    """The URL with its port (the scheme's default if none) and without any."""
    parts = urlsplit(url)
    try:
        given_port = parts.port
    except ValueError:  # out of range: no signature names it, so none will match
        return {url}
    start = len(parts.scheme) + 3  # after "://"
    rest = url[start + len(parts.netloc):]
    host = parts.netloc.rsplit(":", 1)[0] if given_port else parts.netloc
    port = given_port or (443 if parts.scheme == "https" else 80)
    return {f"{parts.scheme}://{host}{rest}", f"{parts.scheme}://{host}:{port}{rest}"}


def _check_sid(name: str, option: str, value: Any, prefix: str, id: str) -> list[CheckMessage]:
    """Twilio sids are a two-letter prefix and 32 hex digits."""
    if not isinstance(value, str) or re.fullmatch(prefix + "[0-9a-fA-F]{32}", value):
        return []
    return [Error(  # only the start of the value: it may be a secret pasted in the wrong place
        f"Backend {name!r}: {option} starting {value[:4]!r} is not a Twilio sid.",
        hint=f"Copy it from the Twilio console: '{prefix}' and 32 hex digits.",
        id=f"smsrouter.{id}",
    )]


def _check_url(name: str, option: str, value: Any, id: str, hint: str) -> list[CheckMessage]:
    """A URL that paths are appended to: absolute, http(s), nothing after its path."""
    if not isinstance(value, str):
        return []  # absent, or E009 reports its type
    parts = absolute(value)
    if parts is None:
        problem = "is not an absolute http(s) URL"
    elif parts.query or parts.fragment:
        problem = "must not have a query or a fragment"
    elif "/backend/" in parts.path + "/":
        problem = "is a webhook URL, but smsrouter adds /backend/<name>/ itself"
    else:
        return []
    return [Error(f"Backend {name!r}: {option} {value!r} {problem}.", hint=hint,
                  id=f"smsrouter.{id}")]
