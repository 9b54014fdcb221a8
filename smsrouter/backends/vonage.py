"""Vonage's SMS API (once Nexmo's): signed webhooks in, /sms/json out, delivery receipts back.

Vonage signs each webhook with the account's signature secret, by the method chosen in its
dashboard, and the signature covers every parameter, including a Unix `timestamp`. Nothing
else proves a webhook came from Vonage, since its URL carries no secret: so the secret is
required, and a request is believed only once its signature matches. Its age is not
judged: Vonage retries a webhook that was not answered 2xx, and a retry that came after a
window closed would lose the message, while a replay does no harm here (an inbound
messageId is routed once, and a receipt only moves a message forward). This is the SMS
API, not the Messages API, whose webhooks are JSON Web Tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest, HttpResponse

from smsrouter import gsm, httpclient
from smsrouter.backends.base import (BaseBackend, Inbound, OptionType, Outcome, PartOf,
                                     StatusReport, form_data, mapped, request_body, required)
from smsrouter.backends.options import absolute, empty_options
from smsrouter.exceptions import BadInbound, BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

API_URL = "https://rest.nexmo.com"
#: The methods of the Vonage dashboard's "Signature method": md5hash appends the secret to
#: what it hashes (the legacy default); the others are HMACs keyed with it.
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
#: The status of each part in /sms/json's answer (Vonage's "SMS API error codes") that a
#: later attempt may cure: throttling, an internal error, no credit left, too many binds.
TEMPORARY_STATUSES = frozenset({"1", "5", "9", "10"})

#: A delivery receipt's status, as the forward-only statuses of smsrouter.reports.
STATUSES: dict[str, str] = {
    "accepted": Status.SENT,  # taken by the carrier
    "buffered": Status.SENT,  # queued at the carrier, handset not reached yet
    "unknown": Status.SENT,  # the carrier gave no word: a later receipt may
    "delivered": Status.DELIVERED,
    "expired": Status.FAILED,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
}
#: The receipt's err-code for a number that asked not to get messages from the sender
#: (Vonage's "Messaging Opted-out Numbers"): the send itself was answered status 0.
OPTED_OUT_ERR_CODE = "9"


def signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The `sig` Vonage gives a request with these parameters (all but `sig` itself).

    Each parameter, sorted by name, is hashed as "&name=value", with "&" and "=" in the
    value replaced by "_". md5hash hashes the secret after them; the HMAC methods are keyed
    with it. Lower-case hex, as vonage_http_client.Auth.sign_params() computes it; Vonage
    sends HMACs in upper case, so compare without case.
    """
    if method == "md5hash":
        hasher: Any = hashlib.md5()
    else:
        hasher = hmac.new(secret.encode(), digestmod=method)
    for name in sorted(params):
        value = params[name].replace("&", "_").replace("=", "_")
        # Lone surrogates (a body declared in a charset such as utf-7) are hashed as they
        # are: no Vonage request holds them, so the signature fails instead of raising.
        hasher.update(f"&{name}={value}".encode("utf-8", "surrogatepass"))
    if method == "md5hash":
        hasher.update(secret.encode())
    return hasher.hexdigest()


class VonageBackend(BaseBackend):
    """Vonage's inbound-SMS webhook at /backend/<name>/, its delivery receipts at .../status/.

    Vonage calls either by GET or POST (a form, or JSON), as the account's "HTTP Method"
    setting says.
    """

    inbound_methods = ("GET", "POST")
    status_methods = ("GET", "POST")
    options: ClassVar[dict[str, OptionType]] = {
        "api_key": str,
        "api_secret": str,
        "from_number": str,
        "signature_secret": str,
        "signature_method": str,
        "api_url": str,
    }
    required_config = ("api_key", "api_secret", "from_number", "signature_secret")

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """Beyond the common checks: a known signature method, no empty secret, a real URL."""
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        method = given.get("signature_method", "md5hash")
        if isinstance(method, str) and method not in SIGNATURE_METHODS:
            errors.append(Error(
                f"Backend {name!r}: signature_method {method!r} is not Vonage's.",
                hint=f"Use the dashboard's method: one of {', '.join(SIGNATURE_METHODS)}.",
                id="smsrouter.E120",
            ))
        dashboard = "Copy it from the Vonage dashboard's API settings."
        errors += empty_options(name, given, [
            ("api_key", "E121", "Vonage refuses every send without it", dashboard),
            ("api_secret", "E122", "Vonage refuses every send without it", dashboard),
            ("signature_secret", "E123", "anyone could sign a webhook", dashboard),
            ("from_number", "E124", "Vonage needs a sender for every message", dashboard),
        ])
        api_url = given.get("api_url")
        if isinstance(api_url, str) and not absolute(api_url):
            errors.append(Error(
                f"Backend {name!r}: api_url {api_url!r} is not an absolute http(s) URL.",
                hint=f"Leave api_url out to use {API_URL!r}; set it only to test against "
                "a stand-in.",
                id="smsrouter.E125",
            ))
        return errors

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """A GET carries its signature in the URL: refuse a forged one before anything else."""
        if request.method == "GET":
            self.verified_params(request)

    # Inbound messages.
    def parse_inbound(self, request: HttpRequest) -> Inbound:
        """An SMS Vonage forwards, or one part of a long one (concat=true)."""
        params = self.verified_params(request)
        msisdn = params.get("msisdn", "").strip()
        if not msisdn:
            raise BadInbound("msisdn", "is required")
        if "text" not in params:
            raise BadInbound("text", "is required (it may be empty)")
        return Inbound(
            # Vonage gives numbers in international form without the "+".
            identity=msisdn if msisdn.startswith("+") else "+" + msisdn,
            text=params["text"],
            external_id=params.get("messageId") or None,  # Vonage retries; route once
            fields={"to": params.get("to", ""), "vonage": {
                key: params[key] for key in ("type", "keyword", "message-timestamp")
                if key in params}},
            part=_part(params),
        )

    # Delivery receipts.
    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """Vonage's receipt for one part of a message, found by our id or by its messageId.

        Each part of a long message gets its own receipt and messageId, of which only the
        first part's is stored; every part carries our id back as client-ref, so each
        receipt finds the message.
        """
        params = self.verified_params(request)
        message_id = required(params, "messageId")
        vonage_status = params.get("status", "")
        status = mapped(vonage_status, "status", STATUSES, "a status of a delivery receipt")
        error, opted_out = "", False
        if status == Status.FAILED:
            code = params.get("err-code", "")
            error = f"Vonage err-code {code} ({vonage_status})" if code else f"Vonage: {vonage_status}"
            if opted_out := code == OPTED_OUT_ERR_CODE:
                error += ": the number opted out of messages from this sender"
        reference = params.get("client-ref", "")
        if reference.isascii() and reference.isdigit():
            return [StatusReport(status, "client-ref", message_id=int(reference), error=error,
                                 opted_out=opted_out)]
        return [StatusReport(status, "messageId", external_id=message_id, error=error,
                             opted_out=opted_out)]

    def status_response(self) -> HttpResponse:
        """Vonage wants a 2xx, and retries anything else."""
        return HttpResponse(status=204)

    def verified_params(self, request: HttpRequest) -> dict[str, str]:
        """The webhook's parameters, once its signature matches; BadSignature otherwise."""
        secret = self.config.get("signature_secret")
        if not secret:
            raise BadSignature("signature_secret is not set, so no signature can be checked")
        params = webhook_params(request)
        given = params.pop("sig", "")
        if not given:
            raise BadSignature("sig is missing")
        method = self.config.get("signature_method", "md5hash")
        if method not in SIGNATURE_METHODS:  # smsrouter.E120 reports it too
            raise BadSignature(f"signature_method {str(method)[:20]!r} is not one of "
                               f"{', '.join(SIGNATURE_METHODS)}, so no signature can be checked")
        expected = signature(secret, method, params)
        if not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise BadSignature(f"sig does not match the parameters; check signature_secret, "
                               f"and that the dashboard's signature method is {method}")
        if not params.get("timestamp"):
            raise BadSignature("timestamp is missing: Vonage signs every webhook with one")
        return params

    # Outbound messages.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One /sms/json request per message (the SMS API takes one recipient), a few at a time."""

        async def part(single: Sequence[OutgoingMessage]) -> list[Outcome]:
            return [await self._send_one(single[0])]

        return await self.send_parts([[message] for message in messages], part)

    async def _send_one(self, message: OutgoingMessage) -> Outcome:
        api_url = self.config.get("api_url", API_URL).rstrip("/")
        answer = await httpclient.request(
            "POST", f"{api_url}/sms/json", data=self.send_form(message),
            timeout=self.config.get("timeout"),
        )
        answer.raise_for_status(detail=answer.text[:300] or None)
        return _outcome(answer)

    def send_form(self, message: OutgoingMessage) -> dict[str, str]:
        """The /sms/json form for one message. `client-ref` is our id, which each delivery
        receipt echoes; a text GSM-7 cannot carry goes as `type=unicode` (UCS-2)."""
        form = {
            "api_key": self.config["api_key"],
            "api_secret": self.config["api_secret"],
            "from": self.config["from_number"].removeprefix("+"),
            "to": message.connection.identity.removeprefix("+"),
            "text": message.text,
            "client-ref": str(message.id),
        }
        if not gsm.is_gsm7(message.text):
            form["type"] = "unicode"
        return form


def webhook_params(request: HttpRequest) -> dict[str, str]:
    """A webhook's parameters: the query string of a GET, the form or JSON object of a POST.

    A repeated form parameter keeps its last value, as Vonage sends each once. JSON values
    that are not strings are written as Python formats them, as Vonage's library does when
    it signs them.
    """
    if request.method == "POST" and request.content_type == "application/json":
        try:
            body = json.loads(request_body(request))
        except ValueError as exc:
            raise BadInbound("body", f"is not JSON ({exc})") from None
        if not isinstance(body, dict) or any(isinstance(value, (dict, list))
                                             for value in body.values()):
            raise BadInbound("body", "must be a JSON object of names and plain values")
        return {name: value if isinstance(value, str) else f"{value}"
                for name, value in body.items()}
    return form_data(request).dict()


def _part(params: Mapping[str, str]) -> PartOf | None:
    """Where a part of a concatenated SMS belongs; None for a whole one."""
    if params.get("concat") != "true":
        return None
    reference = params.get("concat-ref", "")
    if not reference:
        raise BadInbound("concat-ref", "is required with concat=true")
    total = _count(params, "concat-total")
    number = _count(params, "concat-part")
    if number > total:
        raise BadInbound("concat-part", f"is {number}, but concat-total says {total} parts")
    return PartOf(reference=reference, total=total, number=number)


def _count(params: Mapping[str, str], name: str) -> int:
    # ASCII digits only: str.isdigit() takes "²", which int() refuses. Three digits at
    # most, as a concatenated SMS has at most 255 parts.
    raw = params.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= 255):
        raise BadInbound(name, f"must be a whole number from 1 to 255, not {raw[:40]!r}")
    return int(raw)


def _outcome(answer: httpclient.Answer) -> Outcome:
    """Vonage's word on one message from its answer: a part per SMS the text was split into.

    The first part's message-id is kept. A part refused while another was sent fails the
    message for good, since a retry would send the sent parts twice.
    """
    parts = _parts(answer)
    refused = [part for part in parts if str(part.get("status")) != "0"]
    if not refused:
        return Outcome(external_id=str(parts[0].get("message-id") or "") or None)
    code = str(refused[0].get("status"))
    error = f"Vonage status {code}: {refused[0].get('error-text') or 'no error-text'}"
    if len(refused) < len(parts):
        error += f" ({len(parts) - len(refused)} of {len(parts)} parts were sent)"
        return Outcome(error=error)
    return Outcome(error=error, temporary=code in TEMPORARY_STATUSES)


def _parts(answer: httpclient.Answer) -> list[dict[str, Any]]:
    """The answer's `messages`; PermanentSendError when it has none, as then nothing proves
    that Vonage took the message (a proxy's page, a wrong api_url)."""
    try:
        parts = answer.json().get("messages")
    except (ValueError, AttributeError):
        parts = None
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise PermanentSendError(
            f"{answer.where} answered {answer.status} without Vonage's messages: "
            f"{answer.text[:300]}")
    return parts
