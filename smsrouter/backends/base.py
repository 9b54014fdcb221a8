"""What every backend is: a named gateway that parses its own webhooks and sends messages."""

from __future__ import annotations

import asyncio
import difflib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError

from smsrouter import limits, phones
from smsrouter.exceptions import (BadInbound, BadSignature, BodyTooLarge, SendError,
                                  TemporarySendError)

if TYPE_CHECKING:
    from smsrouter.messages import OutgoingMessage

logger = logging.getLogger(__name__)

OptionType = type | tuple[type, ...]
#: The largest id a Message can have: a 64-bit primary key on every database.
MAX_MESSAGE_ID = 2**63 - 1
#: What reading a hostile body makes Django raise: a multipart body without a boundary
#: (MultiPartParserError), too many fields or files (SuspiciousOperation), a urlencoded
#: body declared in another charset than UTF-8 (BadRequest), a codec that is no text
#: encoding (LookupError), and a Content-Length or bytes that are not what they claim
#: (ValueError, UnicodeDecodeError among them).
UNREADABLE_BODY = (MultiPartParserError, SuspiciousOperation, BadRequest, LookupError,
                   ValueError)


@dataclass(frozen=True)
class Outcome:
    """What the gateway said of one message."""

    #: The gateway's id for it, when it gives one that can be stored (smsrouter.limits):
    #: another is logged and dropped, as the message was sent all the same.
    external_id: str | None = None
    #: Not empty: the message was not sent, and why (NUL and lone surrogates as U+FFFD).
    error: str = ""
    #: With an error: a later attempt may succeed.
    temporary: bool = False
    #: With a permanent error: the gateway says the number opted out (Twilio's 21610). The
    #: sender then marks the connection opted out, as a STOP from it would have.
    opted_out: bool = False

    def __post_init__(self) -> None:
        if self.temporary and not self.error:
            raise ValueError("a temporary Outcome needs the error that makes it one")
        if self.opted_out and (self.temporary or not self.error):
            raise ValueError("an opted_out Outcome needs a permanent error")
        if problem := limits.external_id_problem(self.external_id):
            logger.warning("the gateway's id %.80r for a message %s: it is dropped, so no "
                           "delivery report can find the message", self.external_id, problem)
            object.__setattr__(self, "external_id", None)
        object.__setattr__(self, "error", limits.scrubbed(self.error))

    @property
    def sent(self) -> bool:
        return not self.error

    @classmethod
    def failure(cls, exc: Exception) -> Outcome:
        """TemporarySendError -> temporary; any other exception -> permanent."""
        # An exception without a message still has to read as a failure, not as sent.
        return cls(error=str(exc) or type(exc).__name__,
                   temporary=isinstance(exc, TemporarySendError))


#: The gateway took the message and gave no id for it.
SENT = Outcome()


@dataclass(frozen=True)
class PartOf:
    """Where one part of a concatenated SMS belongs: the sender's reference for the whole
    text, how many parts it has, and this part's number (from 1). The reference is a
    string, as gateways give it (an 8- or 16-bit number of a UDH or SAR TLVs, Vonage's
    concat-ref)."""

    reference: str
    total: int
    number: int


@dataclass
class Inbound:
    """One message as a backend parsed it from a gateway's request.

    With `part`, it is one part of a longer text, stored until the others arrive
    (smsrouter.parts) and routed as one message once they have.
    """

    identity: str
    text: str
    external_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    part: PartOf | None = None


@dataclass
class StatusReport:
    """A gateway's word on an outgoing message: a delivery report, callback or event.

    The message is found by our id (`message_id`, when the gateway echoes what we gave
    it) or by the gateway's own (`external_id`); `id_field` names the request field it
    came from, for the error when no message matches.
    """

    status: str
    id_field: str
    message_id: int | None = None
    external_id: str | None = None
    error: str = ""
    #: With a failed status: the gateway says the number opted out (a blacklist, DND), as
    #: an Outcome's opted_out does at send; smsrouter.reports marks the connection so.
    opted_out: bool = False

    def __post_init__(self) -> None:
        """Refuse ids that no message can have (BadInbound naming `id_field`): PostgreSQL
        would fail the lookup of one with NUL in it, where SQLite finds nothing."""
        if self.message_id is not None and (
                isinstance(self.message_id, bool) or not isinstance(self.message_id, int)
                or not 0 < self.message_id <= MAX_MESSAGE_ID):
            raise BadInbound(self.id_field, f"must be a message id from 1 to {MAX_MESSAGE_ID}")
        if problem := limits.external_id_problem(self.external_id):
            raise BadInbound(self.id_field, problem)
        if self.opted_out and self.status != "failed":
            raise ValueError("an opted_out StatusReport must be a failure")
        self.error = limits.scrubbed(self.error)


class BaseBackend:
    """A gateway, under one name of INSTALLED_BACKENDS.

    The options of that entry, less ENGINE, arrive as keyword arguments, keys lower-cased
    (`config`). One engine may serve several names, each with its own options.
    """

    #: HTTP methods the inbound view accepts; empty for a backend that takes no webhooks.
    inbound_methods: tuple[str, ...] = ()
    #: HTTP methods the status view accepts; empty for a backend without delivery reports.
    status_methods: ClassVar[tuple[str, ...]] = ()
    #: Every option the backend takes and its type; `manage.py check` reports others as typos.
    options: ClassVar[dict[str, OptionType]] = {}
    #: Options without which the backend cannot work.
    required_config: ClassVar[tuple[str, ...]] = ()
    #: True for a backend whose send() never waits on I/O, as nothing leaves the process:
    #: blocking callers then run it without lending an event loop.
    in_process: ClassVar[bool] = False
    #: True for a backend that sends only through a link the process that activated it
    #: holds (an SMPP bind): that process runs a sender for it, and no other can send.
    holds_link: ClassVar[bool] = False
    #: Requests in flight at once per process, unless the `concurrency` option says otherwise.
    default_concurrency: ClassVar[int] = 10
    #: Options every backend takes.
    common_options: ClassVar[dict[str, OptionType]] = {
        "default_region": str,
        "rate_limit": (int, float),  # messages per second, across all workers
        "concurrency": int,  # requests in flight per worker, for one-message-per-request APIs
        "timeout": (int, float),  # seconds a send request may take (HTTP backends; default 30)
    }

    def __init__(self, name: str, **config: Any) -> None:
        self.name = name
        self.config = {key.lower(): value for key, value in config.items()}

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        """System-check errors for this backend's options (ENGINE already removed)."""
        given = {key.lower(): value for key, value in config.items()}
        known = {**cls.common_options, **cls.options}
        errors: list[CheckMessage] = [
            Error(f"Backend {name!r} needs the option {option!r}.",
                  hint=f"Add {option!r}: ... to INSTALLED_BACKENDS[{name!r}].",
                  id="smsrouter.E005")
            for option in cls.required_config if option not in given
        ]
        for option, value in given.items():
            if option not in known:
                close = difflib.get_close_matches(option, known, n=1)
                errors.append(Error(
                    f"Backend {name!r}: {cls.__name__} takes no option {option!r}.",
                    hint=f"Did you mean {close[0]!r}?" if close else
                    f"Its options are: {', '.join(sorted(known)) or 'none'}.",
                    id="smsrouter.E008"))
            elif not isinstance(value, known[option]):
                expected = known[option]
                names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
                errors.append(Error(
                    f"Backend {name!r}: option {option!r} must be {names}, "
                    f"not {type(value).__name__}.",
                    hint=f"INSTALLED_BACKENDS[{name!r}][{option!r}] = <{names}>",
                    id="smsrouter.E009"))
        timeout = given.get("timeout")
        if isinstance(timeout, (int, float)) and timeout <= 0:
            errors.append(Error(
                f"Backend {name!r}: timeout must be more than 0 seconds, not {timeout}.",
                hint="Leave 'timeout' out for 30 seconds, or give the seconds a send may take.",
                id="smsrouter.E080"))
        region = given.get("default_region")
        if isinstance(region, str) and not phones.is_region(region):
            errors.append(Error(
                f"Backend {name!r}: default_region {region!r} is not a region code.",
                hint="Use a two-letter ISO 3166 code, e.g. 'TZ', 'KE' or 'NG'.",
                id="smsrouter.E007"))
        return errors

    async def activate(self) -> None:
        """Once per server process, at ASGI lifespan startup, in the server's event loop.

        Where a backend opens what it keeps open: a bind to an SMSC, a listening socket.
        `manage.py smsrouter_connect <name>` calls it too, in a process of its own.
        """

    async def deactivate(self) -> None:
        """At lifespan shutdown: close what activate() opened."""

    def normalize(self, identity: str) -> str:
        """The identity in E.164 when `default_region` is set and it is a phone number."""
        return phones.normalize(identity, self.config.get("default_region"))

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """Refuse a webhook on its URL, headers and client, before a byte of its body is read.

        `webhook` is "inbound" or "status". The fast path and the views both call this
        first, so a forged request costs no more than its headers: a backend whose secret
        rides in the URL the gateway calls (a `token` parameter) checks `request.GET` here
        and raises BadSignature. Proof that covers the body, such as Twilio's signature,
        can only be checked while parsing; `request.body` must not be read here. By
        default nothing is checked.
        """

    # Methods that subclasses implement.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """Hand the messages to the gateway, as few calls as it allows.

        One Outcome per message, in order. Raise to fail them all alike
        (TemporarySendError when a retry may succeed). Must not touch the database:
        everything it needs is on the messages (text, connection.identity, id,
        in_response_to).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement send().")

    def ready(self) -> bool:
        """Whether send() can run in this process now.

        True unless the backend sends only through a link this process holds (SMPP):
        the sender leaves such a backend's messages queued for the process whose link is up.
        """
        return True

    def parse_inbound(self, request: HttpRequest) -> Inbound | list[Inbound]:
        """Turn the gateway's webhook into an Inbound, or a list for a gateway that posts
        several messages at once (each checked before any is stored); raise InboundError
        to refuse it."""
        raise NotImplementedError(f"{type(self).__name__} takes no inbound webhooks.")

    def inbound_response(self) -> HttpResponse:
        """What the gateway expects back once the message is accepted."""
        return HttpResponse("OK", content_type="text/plain")

    def parse_status(self, request: HttpRequest) -> list[StatusReport]:
        """Turn a delivery report into StatusReports; raise InboundError to refuse it."""
        raise NotImplementedError(f"{type(self).__name__} takes no delivery reports.")

    def status_response(self) -> HttpResponse:
        """What the gateway expects back once its report is recorded."""
        return HttpResponse("OK", content_type="text/plain")

    async def send_parts(
        self,
        parts: Iterable[Sequence[OutgoingMessage]],
        send_part: Callable[[Sequence[OutgoingMessage]], Awaitable[Sequence[Outcome]]],
    ) -> list[Outcome]:
        """For gateways that take a few messages per request: `concurrency` requests at a time.

        `send_part` returns an Outcome for each message of its part. A SendError from it
        fails that part's messages alone, alike (temporary for a TemporarySendError). The
        Outcomes come in the order the parts list the messages.
        """
        limit = asyncio.Semaphore(self.config.get("concurrency") or self.default_concurrency)

        async def one(part: Sequence[OutgoingMessage]) -> list[Outcome]:
            async with limit:
                try:
                    outcomes = list(await send_part(part))
                except SendError as exc:
                    return [Outcome.failure(exc)] * len(part)
            if len(outcomes) != len(part):
                raise TypeError(f"{type(self).__name__} gave {len(outcomes)} outcome(s) "
                                f"for a part of {len(part)} message(s)")
            return outcomes

        answers = await asyncio.gather(*(one(part) for part in parts))
        return [outcome for outcomes in answers for outcome in outcomes]

    async def send_each(
        self,
        messages: Sequence[OutgoingMessage],
        send_one: Callable[[OutgoingMessage], Awaitable[str | None]],
    ) -> list[Outcome]:
        """For APIs that take one message per request; `send_one` returns the gateway's id."""

        async def part(single: Sequence[OutgoingMessage]) -> list[Outcome]:
            return [Outcome(external_id=await send_one(single[0]))]

        return await self.send_parts([[message] for message in messages], part)


def form_data(request: HttpRequest) -> QueryDict:
    """The request's form: the body's for a POST, the query string's otherwise.

    Every form parser reads it here, so that what Django cannot parse is refused as
    BadInbound("body", ...), a 400, rather than raised out of the view as a 500; a body
    over DATA_UPLOAD_MAX_MEMORY_SIZE is BodyTooLarge, a 413.
    """
    try:
        return request.POST if request.method == "POST" else request.GET
    except RequestDataTooBig:
        raise _too_large() from None
    except UNREADABLE_BODY as exc:
        raise BadInbound("body", f"cannot be read as a form ({type(exc).__name__}: "
                         f"{limits.scrubbed(str(exc))[:200]})") from None


def _too_large() -> BodyTooLarge:
    return BodyTooLarge("body", f"is over DATA_UPLOAD_MAX_MEMORY_SIZE "
                        f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)")


def request_body(request: HttpRequest) -> bytes:
    """The request's body; BodyTooLarge (413) over DATA_UPLOAD_MAX_MEMORY_SIZE, and
    BadInbound for a Content-Length header that is not a number (Django's int() of it)."""
    try:
        return request.body
    except RequestDataTooBig:
        raise _too_large() from None
    except ValueError:
        raise BadInbound("body", "cannot be read: the Content-Length header is not a "
                         "number of bytes") from None


def form_inbound(request: HttpRequest, identity_field: str, text_field: str) -> Inbound:
    """Read a form-encoded message. The identity must not be empty; the text may be."""
    data = form_data(request)
    identity = data.get(identity_field, "").strip()
    if not identity:
        raise BadInbound(identity_field, "is required")
    if text_field not in data:
        raise BadInbound(text_field, "is required (it may be empty)")
    return Inbound(identity=identity, text=data[text_field])


def required(data: Mapping[str, Any], name: str) -> str:
    """A field a report or message cannot be found or stored without: BadInbound naming it
    when it is missing, empty or not text."""
    value = data.get(name)
    if not value or not isinstance(value, str):
        raise BadInbound(name, "is required")
    return value


def mapped(value: Any, name: str, statuses: Mapping[str, str], what: str) -> str:
    """Our status for a gateway's `value` of field `name`; BadInbound naming the field and
    listing the known ones when it is none of them (`what` says what they are)."""
    if not isinstance(value, str) or value not in statuses:
        raise BadInbound(name, f"{str(value)[:40]!r} is not {what} ({', '.join(statuses)})")
    return statuses[value]


def require_token(query: Mapping[str, str], expected: str | None, param: str = "token") -> None:
    """Refuse the query string unless it carries the shared secret (when one is configured).

    For gateways that cannot sign their requests: the secret rides in the URL they call, so
    a backend's check_request() calls this.
    """
    if not expected:
        return
    given = query.get(param, "")
    if not hmac.compare_digest(given.encode(), str(expected).encode()):
        raise BadSignature(f"{param} is missing or wrong")

