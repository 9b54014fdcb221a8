"""Hostile requests through the real ASGI application, to every inbound endpoint: each
backend kind's /backend/<name>/ and /backend/<name>/status/, and POST /httptester/<name>/
(DEBUG on), with the webhook fast path on and off.

The invariant, per request: the answer is not a 5xx (a gateway retries those for ever);
a non-2xx answer wrote nothing (every smsrouter model's rows counted, and Message's
latest update, before and after); a 2xx answer to an inbound endpoint accepted exactly one
message, stored new or, for a replay of a seen external id, the one stored before (sent
again, it is still a 2xx and stores nothing). A 2xx delivery report adds no row.

The requests come from tests/test_parsers_fuzz.py's strategies, with tokens and Twilio
signatures right most of the time so that the parsers, and the database, are reached.
HYPOTHESIS_PROFILE=deep runs 3,000 requests per test, and more with the replays; run it
with SMSROUTER_TEST_DATABASE_URL set for the PostgreSQL pass. ANSWERS counts the status
codes of a run.
"""

import asyncio
import io
import json
from collections import Counter
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Max
from hypothesis import HealthCheck, event, given, settings as hypothesis_settings, strategies as st

from smsrouter import inbound
from smsrouter.backends.twilio import SIGNATURE_HEADER, signature
from smsrouter.backends.twilio import STATUSES as TWILIO_STATUSES
from smsrouter.models import Backend, Connection, Message
from tests.test_parsers_fuzz import (CHARSETS, DIGITS, JSON_VALUES, PLAUSIBLE, TOKEN,
                                     TWILIO_INBOUND, TWILIO_STATUS, VUMI_EVENTS, VUMI_INBOUND,
                                     multipart, requests, texts, urlencoded)

TWILIO_TOKEN = "f" * 32
OUTBOUND_URL = "http://127.0.0.1:9/{identity}/{text}"
#: One backend of each kind, with and without inbound auth.
BACKENDS = {
    "kannel": {"ENGINE": "smsrouter.backends.kannel.KannelBackend", "token": TOKEN},
    "kannel-open": {"ENGINE": "smsrouter.backends.kannel.KannelBackend"},
    "vumi": {"ENGINE": "smsrouter.backends.vumi.VumiBackend", "sendsms_url": "http://127.0.0.1:9/",
             "token": TOKEN},
    "http": {"ENGINE": "smsrouter.backends.http.HttpBackend", "outbound_url": OUTBOUND_URL,
             "identity_param": "from", "text_param": "msg", "external_id_param": "ref"},
    "http-get": {"ENGINE": "smsrouter.backends.http.HttpBackend", "outbound_url": OUTBOUND_URL,
                 "inbound_method": "GET"},
    "tester": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
    "twilio": {"ENGINE": "smsrouter.backends.twilio.TwilioBackend", "account_sid": "AC" + "0" * 32,
               "auth_token": TWILIO_TOKEN, "from_number": "+15005550006"},
    "twilio-open": {"ENGINE": "smsrouter.backends.twilio.TwilioBackend",
                    "account_sid": "AC" + "0" * 32, "auth_token": TWILIO_TOKEN,
                    "from_number": "+15005550006", "validate_signature": False},
}
KANNEL_INBOUND = ["id", "text", "charset", "coding", "sms_id", "token"]
KANNEL_STATUS = ["message_id", "status", "answer", "token", "sig"]
#: Each endpoint: its path, whether it takes inbound messages, and its requests.
ENDPOINTS = {
    **{f"{name} inbound": (f"/backend/{name}/", True, requests(KANNEL_INBOUND, method="GET"))
       for name in ("kannel", "kannel-open")},
    **{f"{name} status": (f"/backend/{name}/status/", False, requests(KANNEL_STATUS, method="GET"))
       for name in ("kannel", "kannel-open")},
    "vumi inbound": ("/backend/vumi/", True, requests(json_keys=VUMI_INBOUND)),
    "vumi status": ("/backend/vumi/status/", False, requests(json_keys=VUMI_EVENTS)),
    "http inbound": ("/backend/http/", True, requests(["from", "msg", "ref"])),
    "http-get inbound": ("/backend/http-get/", True, requests(["identity", "text"], method="GET")),
    "tester inbound": ("/backend/tester/", True, requests(["identity", "text"])),
    "httptester page": ("/httptester/tester/", True, requests(["identity", "text"])),
    **{f"{name} inbound": (f"/backend/{name}/", True, requests(TWILIO_INBOUND))
       for name in ("twilio", "twilio-open")},
    **{f"{name} status": (f"/backend/{name}/status/", False, requests(TWILIO_STATUS))
       for name in ("twilio", "twilio-open")},
    "unknown backend": ("/backend/nope/", False, requests(["identity", "text"])),
}
CONTENT_LENGTHS = st.sampled_from(["right"] * 6 + ["none", "more", "less", "junk", "-1"])
#: Status codes answered in this process, for a measurement run.
ANSWERS: Counter[int] = Counter()
#: Each example is a request; the fixtures' rows only grow meanwhile, which the test allows.
#: (Naming health checks replaces the profile's list, so too_slow is named again.)
FUZZ = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])


@pytest.fixture(params=[True, False], ids=["fast path", "through Django"])
def fuzzed(request, settings, application):
    """The application, the webhook fast path on or off. Settings are changed here, once
    per test: each change stacks an override, which thousands of examples would overflow."""
    settings.SMSROUTER_WEBHOOK_FAST_PATH = request.param
    settings.INSTALLED_BACKENDS = BACKENDS
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.DEBUG = True  # the httptester, and the 404's list of backends
    return application


@pytest.fixture
def accepted(monkeypatch):
    """The messages incoming() accepted (new or seen before), as the views were answered."""
    messages: list[Any] = []
    submit = inbound.together.submit

    async def spied(item: Any) -> Any:
        messages.append(msg := await submit(item))
        return msg

    monkeypatch.setattr(inbound.together, "submit", spied)
    return messages


@pytest_asyncio.fixture
async def reports_find(async_db):
    """One sent message per backend, for delivery reports to find by the ids the
    strategies send: Twilio's MessageSid, Vumi's user_message_id, Kannel's message_id."""

    def seed() -> dict[str, int]:
        ids = {}
        for name in BACKENDS:
            backend = Backend.objects.create(name=name)
            connection = Connection.objects.create(backend=backend, identity="+255700000001")
            ids[name] = Message.objects.create(
                direction="out", backend=backend, connection=connection, text="hi",
                status="sent", external_id="SM" + "1" * 32).pk
        return ids

    return await sync_to_async(seed)()


def snapshot() -> dict[str, tuple[int, Any]]:
    """Each smsrouter model's row count and newest row, and Message's latest update."""
    seen = {model.__name__: (model.objects.count(), model.objects.aggregate(Max("pk"))["pk__max"])
            for model in apps.get_app_config("smsrouter").get_models()}
    seen["updated"] = (0, Message.objects.aggregate(Max("updated_at"))["updated_at__max"])
    return seen


def messages(seen: dict[str, tuple[int, Any]]) -> int:
    return seen["Message"][0]


async def call(application: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes]:
    """The application's answer to one request, its body in `chunks`."""
    pending = [{"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
               for index, chunk in enumerate(chunks)]
    answered = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await answered.wait()  # the client waits for the answer, then leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(application(scope, receive, send), 10)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


def scope_of(parts: dict[str, Any], path: str, content_length: str) -> dict[str, Any]:
    """The ASGI scope of the request, from a client on this machine (as the httptester
    needs with DEBUG on), its Content-Length right or not."""
    body: bytes = parts["body"]
    headers = [(b"host", b"127.0.0.1")]
    if parts["content_type"]:
        headers.append((b"content-type", deliverable(str(parts["content_type"]))))
    lengths = {"right": len(body), "more": len(body) + 10, "less": max(len(body) - 1, 0),
               "junk": "abc", "-1": -1}
    if content_length in lengths:
        headers.append((b"content-length", str(lengths[content_length]).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": parts["method"], "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": parts["query"], "root_path": "",
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80), "headers": headers}


def deliverable(value: str) -> bytes:
    """A header value as a server can hand it over: uvicorn (httptools and h11 alike)
    answers 400 itself to a request whose header holds a control character such as NUL,
    so those are "?" here."""
    raw = value.encode("utf-8", "surrogatepass")
    return bytes(byte if byte == 9 or 32 <= byte != 127 else ord("?") for byte in raw)


def twilio_signature(scope: dict[str, Any], body: bytes) -> bytes:
    """What Twilio would sign this request with: over the form Django parses of it."""
    try:
        request = ASGIRequest(scope, io.BytesIO(body))
        form = request.POST if request.method == "POST" else request.GET
        params = dict(form.lists())
        url = request.build_absolute_uri()
    except Exception:  # the application's refusal is what the test is about
        return b"unsignable"
    return signature(TWILIO_TOKEN, url, params).encode()


#: Values for the fields of a well-formed request: what gateways send, and what they should not.
FIELD_VALUES = PLAUSIBLE | DIGITS | texts()
SEEDED = "SEEDEDID"  # stands for the id of the message reports_find stored for the backend


@st.composite
def formed(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A request of the shape the endpoint takes (its method, its fields where it reads
    them, their content type), the values hostile or not: past the parsers' first checks,
    down to smsrouter.limits and the database."""
    def fields(names: dict[str, st.SearchStrategy[Any]]) -> list[tuple[str, Any]]:
        return [(key, draw(values)) for key, values in names.items() if draw(st.integers(0, 7))]

    backend = name.split()[0]
    query, body, method, content_type = b"", b"", "POST", "application/x-www-form-urlencoded"
    if backend.startswith("kannel"):
        method = draw(st.sampled_from(["GET", "POST"]))
        if name.endswith("inbound"):
            form = fields({"id": FIELD_VALUES, "charset": st.sampled_from(CHARSETS),
                           "coding": st.sampled_from(["0", "1", "2", "x"]),
                           "text": st.binary(max_size=20) | FIELD_VALUES, "sms_id": FIELD_VALUES})
        else:
            form = fields({"message_id": st.just(SEEDED) | DIGITS,
                           "status": st.sampled_from(["1", "2", "4", "8", "16", "3"]) | DIGITS,
                           "answer": FIELD_VALUES})
        if method == "GET" or draw(st.booleans()):
            query = urlencoded(form)
        else:
            body = urlencoded(form)
    elif backend == "vumi":
        keys = VUMI_INBOUND if name.endswith("inbound") else VUMI_EVENTS
        document = {key: draw(FIELD_VALUES | JSON_VALUES) for key in keys
                    if draw(st.integers(0, 5))}
        if name.endswith("status"):
            document["event_type"] = draw(st.sampled_from(["ack", "nack", "delivery_report"]))
            document["user_message_id"] = draw(st.just("SM" + "1" * 32) | FIELD_VALUES)
            document["delivery_status"] = draw(st.sampled_from(["delivered", "failed", "pending"]))
        text = json.dumps(document, ensure_ascii=draw(st.booleans()))
        body = text.encode("utf-8", "surrogatepass")
        content_type = "application/json"
    elif backend.startswith("twilio"):
        if name.endswith("inbound"):
            form = fields({"From": FIELD_VALUES, "Body": FIELD_VALUES, "MessageSid": FIELD_VALUES,
                           "To": FIELD_VALUES,
                           "NumMedia": st.sampled_from(["0", "1", "2"]) | DIGITS,
                           "MediaUrl0": FIELD_VALUES, "MediaContentType0": FIELD_VALUES})
        else:
            form = fields({"MessageSid": st.just("SM" + "1" * 32) | FIELD_VALUES,
                           "MessageStatus": st.sampled_from(sorted(TWILIO_STATUSES)) | FIELD_VALUES,
                           "ErrorCode": FIELD_VALUES})
        body = urlencoded(form)
    else:
        identity, text = ("from", "msg") if backend == "http" else ("identity", "text")
        form = fields({identity: FIELD_VALUES, text: FIELD_VALUES, "ref": FIELD_VALUES})
        if backend == "http-get":
            method, query = "GET", urlencoded(form)
        elif draw(st.booleans()):
            body = urlencoded(form)
        else:
            boundary = draw(st.sampled_from(["b0undary", "x" * 70]))
            body = draw(multipart(form, boundary))
            content_type = f"multipart/form-data; boundary={boundary}"
    return {"method": method, "query": query, "body": body, "content_type": content_type}


@st.composite
def hostile_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request to one endpoint: well formed with hostile values, or hostile throughout."""
    name = draw(st.sampled_from(sorted(ENDPOINTS)))
    path, takes_messages, strategy = ENDPOINTS[name]
    parts = draw(formed(name) | strategy)
    if name.startswith(("kannel ", "vumi")) and draw(st.integers(0, 3)):
        parts["query"] = f"token={TOKEN}&".encode() + parts["query"]
    body: bytes = parts["body"]
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=2)))
    chunks = [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return {"name": name, "path": path, "takes_messages": takes_messages, "parts": parts,
            "chunks": chunks, "content_length": draw(CONTENT_LENGTHS),
            "signed": name.startswith("twilio ") and draw(st.integers(0, 3)) > 0,
            "replayed": draw(st.booleans())}


@pytest.mark.asyncio
@FUZZ
@given(request=hostile_requests())
async def test_no_request_is_a_5xx_and_refusals_write_nothing(fuzzed, reports_find, accepted,
                                                               request):
    accepted.clear()
    backend = request["path"].split("/")[2]
    if backend in reports_find:
        seeded = str(reports_find[backend]).encode()
        request["parts"]["query"] = request["parts"]["query"].replace(SEEDED.encode(), seeded)
        if SEEDED.encode() in request["parts"]["body"]:
            body = request["parts"]["body"].replace(SEEDED.encode(), seeded)
            request["parts"]["body"], request["chunks"] = body, [body]
    scope = scope_of(request["parts"], request["path"], request["content_length"])
    if request["signed"]:
        scope["headers"].append((SIGNATURE_HEADER.lower().encode(),
                                 twilio_signature(scope, request["parts"]["body"])))
    before = await sync_to_async(snapshot)()
    status, body = await call(fuzzed, scope, request["chunks"])
    ANSWERS[status] += 1
    event(f"{request['name']}: {status}")
    assert status < 500, body
    after = await sync_to_async(snapshot)()
    if not 200 <= status < 300:
        assert after == before and not accepted, body
        return
    if not request["takes_messages"]:
        assert {name: count for name, (count, _) in after.items()} == {
            name: count for name, (count, _) in before.items()}
        return
    [msg] = accepted
    new = messages(after) - messages(before)
    assert new == 1 or (new == 0 and msg.record.external_id is not None), (new, msg)
    if request["replayed"]:  # a gateway's retry: stored once if it has an id, else again
        again, body = await call(fuzzed, scope, request["chunks"])
        ANSWERS[again] += 1
        assert 200 <= again < 300, body
        stored = messages(await sync_to_async(snapshot)()) - messages(after)
        first, second = accepted
        if msg.record.external_id is None:
            assert stored == 1 and second.id != first.id
        else:
            assert stored == 0 and second.id == first.id
