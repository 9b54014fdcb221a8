"""Kannel's smsbox: messages arrive through an sms-service get-url and leave through sendsms.

A drop-in for RapidSMS's Kannel backend: the same options, and the same get-url
(`?id=%p&text=%a&charset=%C&coding=%c`), so an existing kannel.conf keeps working. Two
things need care. Kannel's `%b` (and `%a`) is the message's bytes, percent-encoded, in the
charset `%C` names: UTF-16BE for a UCS-2 SMS. So the text is decoded from those bytes,
never through Django's UTF-8 `request.GET`. `%a` also squeezes whitespace bytes, which
breaks UCS-2 texts; docs/backends/kannel.md has the get-url with `%b`. And a reply that
GSM-7 cannot carry goes out as UCS-2 (`coding=2`), or its characters would be lost.
"""

import base64
import codecs
import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from smsrouter import gsm, httpclient
from smsrouter.backends.base import (SENT, BaseBackend, Inbound, Outcome, StatusReport,
                                     request_body, require_token)
from smsrouter.backends.options import empty_options
from smsrouter.exceptions import BadInbound, BadSignature, PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status

DEFAULT_SENDSMS_URL = "http://127.0.0.1:13013/cgi-bin/sendsms"
#: Every report Kannel can give: delivered, undeliverable, buffered, accepted, rejected.
DLR_MASK = 31
#: What a dlr-url's signature is keyed for, so that it proves nothing anywhere else.
DLR_SALT = "smsrouter.backends.kannel.dlr-url"
#: Kannel's report types (`%d` in a dlr-url): our status, and what the type means.
DLR_TYPES = {
    1: (Status.DELIVERED, "delivered"),
    2: (Status.FAILED, "undeliverable"),
    4: (Status.SENT, "buffered by the SMSC"),
    8: (Status.SENT, "accepted by the SMSC"),
    16: (Status.FAILED, "rejected by the SMSC"),
}
#: Kannel's `%C` for 8-bit data (coding 1) names no charset: keep each byte as a character.
CHARSET_ALIASES = {"8-BIT": "latin-1"}
#: Codecs of str that no gateway sends text in: "undefined" always raises UnicodeError,
#: "idna" and "punycode" raise it for ordinary bytes, and the escape codecs read
#: backslashes as Python does (with a DeprecationWarning for unknown escapes).
NOT_CHARSETS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})
#: sendsms parameters set for each message, which `sendsms_params` must leave alone.
OWN_PARAMS = ("to", "text", "charset", "coding", "dlr-url", "dlr-mask")
#: Numbers in one sendsms request: keeps its URL within what proxies and logs take whole.
MAX_RECIPIENTS = 100


class KannelBackend(BaseBackend):
    """Kannel's smsbox: inbound through an sms-service get-url, outbound through sendsms."""

    inbound_methods = ("GET", "POST")
    status_methods = ("GET", "POST")
    options = {
        "sendsms_url": str,
        "sendsms_params": dict,
        "charset": str,
        "encode_errors": str,
        "coding": int,
        "delivery_report_url": str,
        "token": str,
    }

    def __init__(self, name: str, **config: Any) -> None:
        super().__init__(name, **config)
        self.sendsms_url: str = self.config.get("sendsms_url", DEFAULT_SENDSMS_URL)
        self.sendsms_params: dict[str, Any] = self.config.get("sendsms_params", {})
        self.charset: str = self.config.get("charset", "UTF-8")
        self.encode_errors: str = self.config.get("encode_errors", "strict")
        self.coding: int | None = self.config.get("coding")
        self.delivery_report_url: str | None = self.config.get("delivery_report_url")
        self.token: str | None = self.config.get("token")

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        url = given.get("sendsms_url")
        if isinstance(url, str) and not _is_http_url(url):
            errors.append(Error(
                f"Backend {name!r}: sendsms_url {url!r} is not an http(s) URL.",
                hint=f"'sendsms_url': {DEFAULT_SENDSMS_URL!r} (smsbox's sendsms-port)",
                id="smsrouter.E041"))
        url = given.get("delivery_report_url")
        if isinstance(url, str) and not (_is_http_url(url) and not urlsplit(url).query):
            errors.append(Error(
                f"Backend {name!r}: delivery_report_url {url!r} is not the http(s) URL "
                "of this site.",
                hint="'delivery_report_url': 'https://sms.example.org' (where Kannel reaches "
                "this site; smsrouter adds the status path and query)",
                id="smsrouter.E042"))
        charset = given.get("charset")
        if isinstance(charset, str) and not _is_text_encoding(charset):
            errors.append(Error(
                f"Backend {name!r}: charset {charset!r} is not a text encoding.",
                hint="'charset': 'UTF-8' (Kannel converts to what the SMSC takes)",
                id="smsrouter.E043"))
        handler = given.get("encode_errors")
        if isinstance(handler, str) and not _is_error_handler(handler):
            errors.append(Error(
                f"Backend {name!r}: encode_errors {handler!r} is not a codec error handler.",
                hint="Leave it out to fail a text the charset cannot carry; 'replace' sends "
                "'?' instead of each such character, 'ignore' drops them.",
                id="smsrouter.E047"))
        coding = given.get("coding")
        if isinstance(coding, int) and (isinstance(coding, bool) or coding not in (0, 2)):
            errors.append(Error(
                f"Backend {name!r}: coding {coding!r} is not 0 (GSM-7) or 2 (UCS-2).",
                hint="Leave 'coding' out: each text then gets 0 if GSM-7 can carry it, else 2.",
                id="smsrouter.E044"))
        params = given.get("sendsms_params")
        if isinstance(params, dict) and (taken := sorted(set(params) & set(OWN_PARAMS))):
            errors.append(Error(
                f"Backend {name!r}: sendsms_params sets {', '.join(map(repr, taken))}, "
                "which the backend sets for each message.",
                hint="Remove them; use the options 'charset', 'coding' and "
                "'delivery_report_url' instead.",
                id="smsrouter.E045"))
        return errors + empty_options(name, given, [(
            "token", "E046", "requests need no secret at all",
            "Set 'token' to a long random string, or remove it to take requests without one.")])

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """The `token` option, when set, must be in every URL Kannel calls: get-url and dlr-url."""
        require_token(request.GET, self.token)

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        fields = _fields(request)
        identity = fields.get("id", b"").decode("utf-8", "replace").strip()
        if not identity:
            raise BadInbound("id", "is required (the get-url must pass id=%p)")
        if "text" not in fields:
            raise BadInbound("text", "is required, though it may be empty "
                             "(the get-url must pass text=%b)")
        text = _decode(fields["text"], fields.get("charset", b""), fields.get("coding", b""))
        sms_id = fields.get("sms_id", b"").decode("utf-8", "replace")
        return Inbound(identity=identity, text=text, external_id=sms_id or None)

    def inbound_response(self) -> HttpResponse:
        """Empty: Kannel would send a non-empty body back to the phone as an SMS."""
        return HttpResponse(b"", content_type="text/plain")

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """Hand the messages to sendsms; a SendError fails only its request's messages.

        Without delivery reports, the recipients of one text share a request (`to` takes
        numbers separated by spaces). With them, each message has a request of its own,
        since its dlr-url must say which message Kannel reports on.
        """
        if self.delivery_report_url:
            groups = [[index] for index in range(len(messages))]
        else:
            by_text: dict[str, list[int]] = defaultdict(list)
            for index, message in enumerate(messages):
                by_text[message.text].append(index)
            groups = [same[start:start + MAX_RECIPIENTS] for same in by_text.values()
                      for start in range(0, len(same), MAX_RECIPIENTS)]
        outcomes = await self.send_parts([[messages[i] for i in group] for group in groups],
                                         self._sendsms)
        in_order: list[Outcome] = [SENT] * len(messages)
        for index, outcome in zip(itertools.chain.from_iterable(groups), outcomes, strict=True):
            in_order[index] = outcome  # from the requests' order (by text) to the messages'
        return in_order

    async def _sendsms(self, batch: Sequence[OutgoingMessage]) -> list[Outcome]:
        text = batch[0].text
        try:
            encoded = text.encode(self.charset, self.encode_errors)
        except UnicodeEncodeError as exc:
            raise PermanentSendError(
                f"the text cannot be sent in charset {self.charset} (option 'charset'): "
                f"{exc.reason}") from None
        params = {
            **self.sendsms_params,
            "to": " ".join(message.connection.identity for message in batch),
            "text": encoded,  # bytes: urlencode() percent-encodes them as they are
            "charset": self.charset,
            "coding": gsm.coding(text) if self.coding is None else self.coding,
        }
        if self.delivery_report_url:
            params["dlr-mask"] = DLR_MASK
            params["dlr-url"] = self._dlr_url(batch[0])
        separator = "&" if "?" in self.sendsms_url else "?"
        answer = await httpclient.request("GET", self.sendsms_url + separator + urlencode(params),
                                          timeout=self.config.get("timeout"))
        answer.raise_for_status()  # 202 "0: Accepted for delivery" or "3: Queued for later..."
        return [SENT] * len(batch)  # no id: reports find the message by the dlr-url's

    def _dlr_url(self, message: OutgoingMessage) -> str:
        """Where Kannel reports on the message, filling in `%d` (type) and `%A` (SMSC answer).

        `sig` proves that smsrouter wrote this URL for this message (see parse_status).
        The status view's path is taken without the script prefix of whatever request is
        running: `delivery_report_url` already says where the site is served.
        """
        path = reverse("smsrouter:status", args=[self.name])[len(get_script_prefix()):]
        query = (f"message_id={message.id}&status=%d&answer=%A"
                 f"&sig={dlr_signature(self.name, message.id)}")
        if self.token:
            query += "&" + urlencode({"token": self.token})
        return f"{self.delivery_report_url.rstrip('/')}/{path}?{query}"

    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        fields = _fields(request)
        message_id = fields.get("message_id", b"")
        if not _is_id(message_id):
            raise BadInbound("message_id", "must be the number smsrouter put in the dlr-url")
        self._check_signature(request, int(message_id), fields.get("sig", b"").decode("latin-1"))
        kind = fields.get("status", b"")
        if not _is_id(kind) or int(kind) not in DLR_TYPES:
            raise BadInbound("status", f"{kind.decode('latin-1')!r} is not a Kannel report "
                             f"type ({', '.join(map(str, DLR_TYPES))}); pass status=%d")
        status, meaning = DLR_TYPES[int(kind)]
        answer = fields.get("answer", b"").decode("utf-8", "replace")
        return [StatusReport(status=status, id_field="message_id", message_id=int(message_id),
                             error=f"{meaning}: {answer}" if answer else meaning)]

    def _check_signature(self, request: HttpRequest, message_id: int, given: str) -> None:
        """Refuse a report whose dlr-url smsrouter did not write for this message.

        Without it, anyone who knew the status URL could settle any message for good (a
        forged `failed` outranks the genuine `delivered` that follows). A dlr-url written
        before smsrouter signed them has no `sig`: it is taken only with the backend's
        `token`, which then proves that Kannel called.
        """
        if not given:
            if not self.token:
                raise BadSignature("sig is missing: Kannel must call the dlr-url smsrouter gave "
                                   "it, which carries sig=")
            require_token(request.GET, self.token)  # check_request's check, if it was not run
            return
        secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        if not any(constant_time_compare(given, dlr_signature(self.name, message_id, secret))
                   for secret in secrets):
            raise BadSignature("sig does not match message_id; if SECRET_KEY changed since the "
                               "message was sent, keep the old key in SECRET_KEY_FALLBACKS")

    def status_response(self) -> HttpResponse:
        return HttpResponse(b"", content_type="text/plain")


def dlr_signature(backend_name: str, message_id: int, secret: str | bytes | None = None) -> str:
    """The dlr-url's `sig`: an HMAC-SHA256 of the backend's name and the message's id, keyed
    with SECRET_KEY (or `secret`), cut to 96 bits: 16 characters that need no escaping."""
    digest = salted_hmac(DLR_SALT, f"{backend_name}\n{message_id}", secret,
                         algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _fields(request: HttpRequest) -> dict[str, bytes]:
    """The query string's fields, and a POSTed form's, as the bytes they encode.

    latin-1 maps each byte to one character and back, so a percent-encoded UTF-16BE text
    survives the parser unchanged. Each of the two may have DATA_UPLOAD_MAX_NUMBER_FIELDS
    fields at most, as a form that Django parses.
    """
    sources = [("query string", request.META.get("QUERY_STRING", "").encode())]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        sources.append(("body", request_body(request)))
    fields: dict[str, bytes] = {}
    for where, source in sources:
        try:
            pairs = parse_qsl(source.decode("latin-1"), keep_blank_values=True,
                              encoding="latin-1",
                              max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
        except ValueError:
            raise BadInbound(where, "has more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS "
                             f"({settings.DATA_UPLOAD_MAX_NUMBER_FIELDS})") from None
        for name, value in pairs:
            fields[name] = value.encode("latin-1")
    return fields


def _decode(text: bytes, charset_field: bytes, coding: bytes) -> str:
    """The text in the charset Kannel names; without `%C`, Kannel's own defaults.

    Any other error than BadInbound would be a 500 for the gateway to retry for ever, so
    every codec Python has was tried on hostile bytes: those that are not text encodings
    raise LookupError, NOT_CHARSETS raise or warn otherwise, and the rest raise only
    UnicodeDecodeError.
    """
    charset = charset_field.decode("latin-1") or ("UTF-16BE" if coding == b"2" else "UTF-8")
    named = f"{charset[:40]!r}"
    try:
        codec = codecs.lookup(CHARSET_ALIASES.get(charset.upper(), charset))
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise BadInbound("charset", f"{named} is not a charset this server knows") from None
    if codec.name in NOT_CHARSETS:
        raise BadInbound("charset", f"{named} is not a text encoding")
    # A UCS-2 SMS may hold half of a surrogate pair (an emoji split between the parts of a
    # long message): kept, to be stored as U+FFFD with the original (smsrouter.limits).
    errors = "surrogatepass" if codec.name.startswith(("utf-16", "utf-32")) else "strict"
    try:
        return text.decode(codec.name, errors)
    except LookupError:  # base64, zlib, rot13 ...: codecs of bytes to bytes, or str to str
        raise BadInbound("charset", f"{named} is not a text encoding") from None
    except UnicodeError as exc:
        squeezed = " (Kannel's %a squeezes whitespace bytes out of UCS-2: pass text=%b)"
        raise BadInbound("text", f"is not valid {charset[:40]}: {getattr(exc, 'reason', exc)}"
                         f"{squeezed if coding == b'2' else ''}") from None


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_text_encoding(charset: str) -> bool:
    try:
        "".encode(charset)  # LookupError also for codecs that are not text encodings
    except LookupError:
        return False
    return True


def _is_error_handler(handler: str) -> bool:
    try:
        codecs.lookup_error(handler)
    except LookupError:
        return False
    return True


def _is_id(value: bytes) -> bool:
    """Digits that fit a 64-bit primary key, rather than whatever int() would accept."""
    return value.isdigit() and len(value) <= 18
