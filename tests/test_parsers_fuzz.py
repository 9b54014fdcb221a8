"""Every backend's parsers, fed hostile requests: the only outcomes allowed are a parsed
Inbound (or StatusReport list) and the project's own refusal, InboundError.

The requests are built with Django's request factories, WSGI and ASGI, from generated
methods, query strings, content types (odd charsets and boundaries among them) and bodies
(forms, multipart, JSON-ish, deeply nested, raw bytes). Each backend gets the fields it
reads, each present or not, with plausible values or hostile ones, so that generation
reaches past the first check. Anything else a parser raised would be a 500, which a
gateway retries for ever; warnings are errors here too. tests/test_webhooks_fuzz.py
drives the same requests through the real ASGI application.
"""

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from django.http import HttpRequest
from django.test import AsyncRequestFactory, RequestFactory
from hypothesis import event, given, reject, strategies as st

from smsrouter.backends.base import Inbound, StatusReport
from smsrouter.backends.http import HttpBackend
from smsrouter.backends.httptester import HttpTesterBackend
from smsrouter.backends.kannel import KannelBackend
from smsrouter.backends.twilio import SIGNATURE_HEADER, TwilioBackend, signature
from smsrouter.backends.vumi import VumiBackend
from smsrouter.exceptions import InboundError

TOKEN = "s3cret"
TWILIO_TOKEN = "f" * 32
#: Charsets: real ones, ones Python has that are no text encoding, and nonsense.
CHARSETS = ["utf-8", "UTF-8", "utf8", "latin-1", "iso-8859-1", "UTF-16BE", "utf-16", "utf-7",
            "ucs-2", "8-BIT", "ascii", "cp1252", "gsm", "undefined", "idna", "punycode",
            "unicode_escape", "raw_unicode_escape", "base64", "hex", "rot13", "zlib", "bz2",
            "uu", "quopri", "utf-8-sig", "shift_jis", "bogus", "", "utf\x00", "x" * 300]
#: Values a gateway sends, so that a parser's first checks pass and later ones are reached.
PLAUSIBLE = st.sampled_from([
    "+255700000001", "0754000001", "1", "2", "16", "0", "hello", "echo hi", "", TOKEN,
    "SM" + "1" * 32, "delivered", "failed", "sent", "undelivered", "ack", "nack",
    "delivery_report", "pending", "utf-8", "UTF-16BE", "8-BIT", "3", "10", "11",
    "https://api.twilio.com/media/1", "image/png", "sms", "new"])
NASTY = st.sampled_from([
    "\x00", "\ud800", "\udfff", "\ufffd", "\U0001f600", "%", "%%", "%zz", "%00", "&", "=", "+",
    ";", "\r\n", " ", "`" * 300, "1" * 101, "x" * 256, "²", "٣", "-1", "99999999999",
    "9" * 30, "1e999", "NaN", "Infinity"])


def texts(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=()), max_size=max_size) | NASTY


DIGITS = st.from_regex(r"\A[0-9]{1,20}\Z")
VALUES = PLAUSIBLE | DIGITS | texts() | st.binary(max_size=12)


def _quoted(value: str | bytes) -> str:
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote_from_bytes(data, safe="")


def urlencoded(pairs: Sequence[tuple[Any, Any]]) -> bytes:
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in pairs).encode()


@st.composite
def forms(draw: st.DrawFn, names: Sequence[str]) -> list[tuple[Any, Any]]:
    """The fields a parser reads, each present or not, and some it does not, in any order;
    a name may come twice."""
    pairs = [(name, draw(VALUES)) for name in names if draw(st.integers(0, 5))]
    junk_names = st.sampled_from(names) | texts(4) if names else texts(4)
    pairs += draw(st.lists(st.tuples(junk_names, VALUES), max_size=3))
    return draw(st.permutations(pairs))


@st.composite
def query_strings(draw: st.DrawFn, names: Sequence[str] = ()) -> bytes:
    """A query string as a server receives it: percent-encoded fields, or bytes as sent."""
    encoded = urlencoded(draw(forms(names))) if names else b""
    raw = draw(st.sampled_from([b"", b"&", b"&&=&", b"a=%", b"=x", b"%ZZ=1", b"id=+1&text=%00",
                                b"x=" + b"%41" * 50, b"k=\xc3\xa9", b"x=1&" * 1001]))
    return encoded + (b"&" if encoded and raw else b"") + raw


@st.composite
def multipart(draw: st.DrawFn, pairs: Sequence[tuple[Any, Any]], boundary: str) -> bytes:
    """A multipart body, mostly well formed: parts with odd headers, or a wrong ending."""
    lines = []
    for name, value in pairs:
        name = name if isinstance(name, str) else name.decode("latin-1")
        disposition = draw(st.sampled_from([
            f'form-data; name="{name}"', f"form-data; name*=bogus''{_quoted(name)}",
            f"form-data; name*=utf-8''{_quoted(name)}", f'form-data; name="{name}"; filename="f"',
            "form-data", "attachment"]))
        lines.append(f"--{boundary}")
        lines.append(f"Content-Disposition: {disposition}")
        lines += draw(st.sampled_from([[], ["Content-Type: text/plain; charset=bogus"],
                                       ["Content-Transfer-Encoding: base64"],
                                       ["Content-Type: text/plain; charset=utf-16"]]))
        lines.append("")
        lines.append(value.decode("latin-1") if isinstance(value, bytes) else value)
    lines.append(draw(st.sampled_from([f"--{boundary}--", f"--{boundary}", "--", ""])))
    return "\r\n".join(lines).encode("utf-8", "surrogatepass")


JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | PLAUSIBLE | texts()
               | st.sampled_from([4299, 63]).map(lambda digits: 10**digits))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(texts(4), inner, max_size=3), max_leaves=8)
#: What json.loads() reads though it is not JSON (NaN, 1e999, lone surrogates, 5,000-digit
#: integers), nesting deeper than Python's recursion, and broken JSON.
SPLICES = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", '"\\ud800"', '"\\udc00x"',
           '"\\u0000"', "9" * 5000, "[" * 100_000, "[" * 50 + "]" * 50, '"' + "\\" * 3,
           '{"a":' * 1000]


@st.composite
def json_bodies(draw: st.DrawFn, keys: Sequence[str]) -> bytes:
    """A JSON object of the keys a parser reads, some values spliced in raw."""
    document = {key: draw(PLAUSIBLE | JSON_VALUES) for key in keys if draw(st.integers(0, 4))}
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    for splice in draw(st.lists(st.sampled_from(SPLICES), max_size=2)):
        key = draw(st.sampled_from([*keys, "x"]))
        text = f'{text[:-1]}{", " if len(text) > 2 else ""}"{key}": {splice}}}'
    body = text.encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([body, body, body, body[: len(body) // 2], b"\xef\xbb\xbf" + body,
                                 text.encode("utf-16", "surrogatepass"), b"[]", b"null", b"",
                                 b"\xff\xfe"]))


BOUNDARIES = st.sampled_from(["b0undary", "x" * 71, "a b", "", '"q"', "é"])
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "text/plain",
    "application/octet-stream", "multipart/form-data", "multipart/form-data; boundary=",
    "multipart/mixed; boundary=b", "", "junk", ";;;", "application/x-www-form-urlencoded; charset=",
]) | st.builds("application/x-www-form-urlencoded; charset={}".format, st.sampled_from(CHARSETS)) \
    | st.builds("application/json; charset={}".format, st.sampled_from(CHARSETS)) \
    | st.builds("multipart/form-data; boundary={}".format, BOUNDARIES)


@st.composite
def requests(draw: st.DrawFn, form: Sequence[str] = (), json_keys: Sequence[str] = (),
             method: str = "POST") -> dict[str, Any]:
    """What a request is made of, for a factory or the ASGI application: the backend's
    method mostly, its fields in the query string, the body or both, a body of the kind it
    takes mostly, and a content type that says so, or not."""
    method = draw(st.sampled_from([method, method, method, "GET", "POST", "PUT"]))
    where = draw(st.sampled_from(["query", "body", "both"]))
    query = draw(query_strings(form if where != "body" else ()))
    pairs = draw(forms(form)) if where != "query" else []
    kind = draw(st.sampled_from(["form", "multipart", "json", "bytes"] if not json_keys
                                else ["json", "json", "json", "form", "bytes"]))
    boundary = draw(BOUNDARIES)
    if kind == "form":
        body, content_type = urlencoded(pairs), "application/x-www-form-urlencoded"
    elif kind == "multipart":
        body = draw(multipart(pairs, boundary))
        content_type = f"multipart/form-data; boundary={boundary}"
    elif kind == "json":
        body, content_type = draw(json_bodies(json_keys)), "application/json"
    else:
        body, content_type = draw(st.binary(max_size=300)), "application/octet-stream"
    if draw(st.integers(0, 2)) == 0:  # a content type that does not match the body
        content_type = draw(CONTENT_TYPES)
    return {"method": method, "query": query, "body": body, "content_type": content_type,
            "asgi": draw(st.booleans())}


def build(parts: dict[str, Any], path: str, headers: dict[str, str] | None = None) -> HttpRequest:
    """The request, from a WSGI or an ASGI request factory (which takes only ASCII
    content types, as HTTP headers are).

    Django's request classes themselves raise for some content types, before any view:
    a NUL in the charset (ValueError from codecs.lookup(), in both), and under WSGI a
    charset Python knows but cannot decode the query string in ("base64", "undefined",
    "idna"). Those are not the parsers' to answer: tests/test_webhooks_fuzz.py sends them
    through the ASGI application, which must answer them.
    """
    query: bytes = parts["query"]
    content_type = str(parts["content_type"])
    asgi = bool(parts["asgi"])
    factory = AsyncRequestFactory() if asgi else RequestFactory()
    if asgi:
        content_type = content_type.encode("ascii", "replace").decode()
    try:
        return factory.generic(parts["method"], path, data=parts["body"],
                               content_type=content_type, headers=headers or {},
                               QUERY_STRING=query if asgi else query.decode("latin-1"))
    except Exception:
        reject()


def parsed_or_refused(parse: Any, request: HttpRequest) -> Any:
    """What the parser gave, or its InboundError; any other exception fails the test."""
    try:
        outcome = parse(request)
    except InboundError as refused:
        assert str(refused)
        event(f"refused: {type(refused).__name__} {getattr(refused, 'field', '')}")
        return refused
    event("parsed")
    return outcome


def assert_inbound(outcome: Any) -> None:
    if isinstance(outcome, InboundError):
        return
    assert isinstance(outcome, Inbound)
    assert isinstance(outcome.identity, str) and isinstance(outcome.text, str)
    assert outcome.external_id is None or isinstance(outcome.external_id, str)
    assert isinstance(outcome.fields, dict)


def assert_reports(outcome: Any) -> None:
    if isinstance(outcome, InboundError):
        return
    assert isinstance(outcome, list) and outcome
    assert all(isinstance(report, StatusReport) for report in outcome)


OUTBOUND_URL = "http://127.0.0.1:9/{identity}/{text}"
KANNEL = KannelBackend("kannel", token=TOKEN)
VUMI = VumiBackend("vumi", sendsms_url="http://127.0.0.1:9/")
HTTP_POST = HttpBackend("http", outbound_url=OUTBOUND_URL, identity_param="from",
                        text_param="msg", external_id_param="ref")
HTTP_GET = HttpBackend("http-get", inbound_method="GET", outbound_url=OUTBOUND_URL)
TESTER = HttpTesterBackend("tester")
TWILIO = TwilioBackend("twilio", account_sid="AC" + "0" * 32, auth_token=TWILIO_TOKEN,
                       from_number="+15005550006")

#: Each backend's parser, and the request it reads: form fields, JSON keys, its method.
VUMI_INBOUND = ["from_addr", "content", "message_id", "to_addr", "transport_name",
                "transport_type", "session_event"]
VUMI_EVENTS = ["event_type", "user_message_id", "delivery_status", "nack_reason"]
TWILIO_INBOUND = ["From", "Body", "MessageSid", "To", "NumMedia", "MediaUrl0", "MediaContentType0"]
TWILIO_STATUS = ["MessageSid", "MessageStatus", "ErrorCode"]
INBOUND = {
    "kannel": (KANNEL, requests(["id", "text", "charset", "coding", "sms_id", "token"],
                                method="GET")),
    "vumi": (VUMI, requests(json_keys=VUMI_INBOUND)),
    "http": (HTTP_POST, requests(["from", "msg", "ref"])),
    "http-get": (HTTP_GET, requests(["identity", "text"], method="GET")),
    "httptester": (TESTER, requests(["identity", "text"])),
    "twilio": (TWILIO, requests(TWILIO_INBOUND)),
}
STATUS = {
    "kannel": (KANNEL, requests(["message_id", "status", "answer", "token", "sig"], method="GET")),
    "vumi": (VUMI, requests(json_keys=VUMI_EVENTS)),
    "twilio": (TWILIO, requests(TWILIO_STATUS)),
}


@pytest.mark.parametrize("name", INBOUND)
@given(data=st.data())
def test_parse_inbound_parses_or_refuses(name, data):
    backend, strategy = INBOUND[name]
    request = build(data.draw(strategy), "/backend/x/")
    assert_inbound(parsed_or_refused(backend.parse_inbound, request))


@pytest.mark.parametrize("name", STATUS)
@given(data=st.data())
def test_parse_status_parses_or_refuses(name, data):
    backend, strategy = STATUS[name]
    assert_reports(parsed_or_refused(backend.parse_status,
                                     build(data.draw(strategy), "/backend/x/status/")))


def signed(parts: dict[str, Any], path: str) -> HttpRequest:
    """The request with the X-Twilio-Signature Twilio would give it: over the form that
    Django parses of it, or over none when Django cannot parse it."""
    probe = build(parts, path)
    try:
        params = dict((probe.POST if probe.method == "POST" else probe.GET).lists())
    except Exception:  # the parser's refusal is what the test is about
        params = {}
    return build(parts, path, {SIGNATURE_HEADER: signature(
        TWILIO_TOKEN, probe.build_absolute_uri(), params)})


@pytest.mark.parametrize("webhook", ["inbound", "status"])
@given(data=st.data())
def test_twilio_with_a_valid_signature_parses_or_refuses(webhook, data):
    """Past the signature, Twilio's parsers read every field of a hostile form."""
    if webhook == "inbound":
        request = signed(data.draw(requests(TWILIO_INBOUND)), "/backend/twilio/")
        assert_inbound(parsed_or_refused(TWILIO.parse_inbound, request))
    else:
        request = signed(data.draw(requests(TWILIO_STATUS)), "/backend/twilio/status/")
        assert_reports(parsed_or_refused(TWILIO.parse_status, request))


@given(asgi=st.booleans(), charset=st.sampled_from(CHARSETS),
       coding=st.sampled_from(["", "0", "1", "2"]), text=st.binary(max_size=40))
def test_kannel_decodes_any_bytes_in_any_charset_or_refuses(asgi, charset, coding, text):
    """Every codec Python has, on any bytes: a text, or BadInbound for the charset or text."""
    query = urlencoded([("id", "+1"), ("token", TOKEN), ("charset", charset),
                         ("coding", coding), ("text", text)])
    parts = {"method": "GET", "query": query, "body": b"", "content_type": "", "asgi": asgi}
    outcome = parsed_or_refused(KANNEL.parse_inbound, build(parts, "/backend/kannel/"))
    assert_inbound(outcome)
    if isinstance(outcome, InboundError):
        assert outcome.field in ("charset", "text")
