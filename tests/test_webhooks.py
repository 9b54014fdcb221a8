"""The webhook fast path keeps Django's contract: request signals once per webhook, in the
thread of the webhooks' database work; got_request_exception when a view raises. With the
fast path on or off, what the URL alone refuses (404, 405, a token's 403, a bad Host) is
answered before a byte of the body is read, and a body over DATA_UPLOAD_MAX_MEMORY_SIZE gets
a 413, read no further. Driven in-process, through the ASGI application as a server would
call it."""

import asyncio
import json
import sys
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.core import signals

from smsrouter.models import Message
from smsrouter.signals import messages_changed
from smsrouter.webhooks import WebhookFastPath
from tests.backends import FormBackend

INBOUND = "/backend/form/"


@pytest.fixture
def received():
    """Each request signal's calls: (signal name, sender, scope path, thread)."""
    calls = []

    def started(sender, scope, **kwargs):
        calls.append(("started", sender, scope["path"], threading.get_ident()))

    def finished(sender, **kwargs):
        calls.append(("finished", sender, None, threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield calls
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


async def post_form(application, path, body):
    communicator = HttpCommunicator(application, "POST", path, body=body, headers=[
        (b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")])
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)
    return response["status"], response["body"]


async def db_thread():
    return await sync_to_async(threading.get_ident, thread_sensitive=True)()


@pytest.mark.asyncio
async def test_a_webhook_sends_request_started_and_finished_once_in_the_db_thread(
        async_db, application, received):
    assert (await post_form(application, INBOUND, b"identity=%2B1&text=echo+hi"))[0] == 200
    thread = await db_thread()
    assert received == [("started", WebhookFastPath, INBOUND, thread),
                        ("finished", WebhookFastPath, None, thread)]


@pytest.mark.asyncio
async def test_a_refused_webhook_sends_them_too(async_db, application, received):
    assert (await post_form(application, "/backend/nope/", b"identity=%2B1&text=hi"))[0] == 404
    assert [name for name, *_ in received] == ["started", "finished"]


@pytest.mark.asyncio
async def test_concurrent_webhooks_send_each_signal_once_per_webhook(async_db, served, received):
    paths = [f"{INBOUND}?n={n}" for n in range(8)]
    answers = await asyncio.gather(*(
        post_form(served, path, f"identity=%2B{n}&text=echo+{n}".encode()) for n, path in enumerate(paths)))
    assert [status for status, _ in answers] == [200] * 8
    assert sorted(name for name, *_ in received) == ["finished"] * 8 + ["started"] * 8
    assert {thread for *_, thread in received} == {await db_thread()}
    assert await Message.objects.filter(direction="in").acount() == 8


@pytest.mark.asyncio
async def test_a_view_that_raises_sends_got_request_exception_with_the_request(
        async_db, application, received, monkeypatch, caplog):
    def broken(self, request):
        raise RuntimeError("the parser broke")

    monkeypatch.setattr(FormBackend, "parse_inbound", broken)
    reported = []

    def report(sender, request, **kwargs):
        reported.append((request.path, sys.exc_info()[1]))

    signals.got_request_exception.connect(report)
    try:
        status, body = await post_form(application, INBOUND, b"identity=%2B1&text=hi")
    finally:
        signals.got_request_exception.disconnect(report)
    assert (status, json.loads(body)) == (500, {"error": "The webhook failed; the server log says why."})
    [(path, exc)] = reported
    assert path == INBOUND and isinstance(exc, RuntimeError) and str(exc) == "the parser broke"
    assert [name for name, *_ in received] == ["started", "finished"]
    assert "webhook /backend/form/ failed" in caplog.text


@pytest.mark.asyncio
async def test_a_failing_messages_changed_receiver_neither_fails_nor_duplicates_the_sms(
        async_db, served, caplog):
    def broken(sender, messages, **kwargs):
        raise ValueError("receiver bug")

    messages_changed.connect(broken)
    try:
        status, _ = await post_form(served, INBOUND, b"identity=%2B1&text=echo+still")
    finally:
        messages_changed.disconnect(broken)
    assert status == 200
    assert await Message.objects.filter(direction="in", text="echo still").acount() == 1
    assert await Message.objects.filter(direction="out", text="still").acount() == 1
    assert "receiver bug" in caplog.text


async def call(application, chunks, headers=(), *, path=INBOUND, query=b"", method="POST"):
    """Drive the application with a body in `chunks`; its status, its body, and how many
    chunks it pulled from receive()."""
    pulled = 0

    async def receive():
        nonlocal pulled
        if pulled == len(chunks):
            await asyncio.Event().wait()  # no disconnect: Django's handler listens for one
        pulled += 1
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}

    sent = []

    async def send(message):
        sent.append(message)

    given = {name for name, _ in headers}
    defaults = [(b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
             "headers": [*(h for h in defaults if h[0] not in given), *headers]}
    await asyncio.wait_for(application(scope, receive, send), 5)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), pulled


@pytest.fixture(params=[True, False], ids=["fast path", "through Django"])
def limited(request, settings, application):
    settings.SMSROUTER_WEBHOOK_FAST_PATH = request.param
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    return application


@pytest.mark.asyncio
async def test_a_content_length_over_the_limit_is_413_before_reading_the_body(async_db, limited, received):
    status, body, pulled = await call(limited, [b"x" * 1000], [(b"content-length", b"1000")])
    assert (status, pulled) == (413, 0)
    assert json.loads(body) == {"error": "The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE "
                                         "(100 bytes): Content-Length says 1000."}
    assert [name for name, *_ in received] == ["started", "finished"]
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_a_streamed_body_over_the_limit_is_413_as_soon_as_it_passes(async_db, limited):
    """Chunked, without Content-Length: reading stops at the chunk that passes the limit."""
    status, body, pulled = await call(limited, [b"identity=1"] * 1000)  # 10 bytes each
    assert (status, pulled) == (413, 11)
    assert "more than that has arrived" in json.loads(body)["error"]
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_a_body_of_exactly_the_limit_is_served(async_db, limited, settings):
    body = b"identity=%2B1&text=echo+" + b"x" * 20
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)
    status, _, pulled = await call(limited, [body[:10], body[10:]])
    assert (status, pulled) == (200, 2)
    assert await Message.objects.filter(direction="in", text="echo " + "x" * 20).aexists()


@pytest.mark.asyncio
async def test_without_a_limit_webhooks_keep_djangos_default_one(async_db, limited, settings):
    """DATA_UPLOAD_MAX_MEMORY_SIZE = None lifts Django's limit, not the webhooks' 2.5 MB."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = None
    length = str(2621440 + 1).encode()
    status, body, pulled = await call(limited, [b"x"], [(b"content-length", length)])
    assert (status, pulled) == (413, 0)
    assert json.loads(body) == {"error": "The request body is over 2621440 bytes, the webhooks' "
                                         "limit while DATA_UPLOAD_MAX_MEMORY_SIZE is None: "
                                         "Content-Length says 2621441."}
    status, _, pulled = await call(limited, [b"x" * 65536] * 41)  # 2,686,976 bytes, chunked
    assert (status, pulled) == (413, 41)
    assert not await Message.objects.aexists()


KANNEL = "/backend/kannel/"


@pytest.fixture(params=[True, False], ids=["fast path", "through Django"])
def guarded(request, settings, application):
    """The application, with a Kannel backend that wants its token in the URL."""
    settings.SMSROUTER_WEBHOOK_FAST_PATH = request.param
    settings.INSTALLED_BACKENDS = {
        **settings.INSTALLED_BACKENDS,
        "kannel": {"ENGINE": "smsrouter.backends.kannel.KannelBackend", "token": "s3cret"},
    }
    return application


EARLY_REFUSALS = [
    pytest.param(dict(path="/backend/nope/"), 404, {"error": "No backend named 'nope'."},
                 id="unknown backend"),
    pytest.param(dict(path="/backend/nope/status/"), 404, {"error": "No backend named 'nope'."},
                 id="unknown backend's reports"),
    pytest.param(dict(method="PUT", path=KANNEL, query=b"token=s3cret"), 405, None,
                 id="method not taken"),
    pytest.param(dict(method="PUT", path="/backend/httptester-public/status/"), 405, None,
                 id="no reports taken"),
    pytest.param(dict(path=KANNEL), 403, {"error": "token is missing or wrong"}, id="no token"),
    pytest.param(dict(path=KANNEL, query=b"token=guess"), 403,
                 {"error": "token is missing or wrong"}, id="wrong token"),
    pytest.param(dict(path=f"{KANNEL}status/", query=b"message_id=1&status=16&token=s3cre"), 403,
                 {"error": "token is missing or wrong"}, id="report with a wrong token"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("where", "status", "error"), EARLY_REFUSALS)
async def test_what_the_url_refuses_is_answered_before_the_body_is_read(
        async_db, guarded, received, where, status, error):
    """Even a body announced far over the limit: the URL is judged first, then the size."""
    chunks = [b"id=%2B1&text=hi"] * 3
    announced = [(b"content-length", b"10000000000")]
    answer, body, pulled = await call(guarded, chunks, announced, **where)
    assert (answer, pulled) == (status, 0)
    if error is not None:
        assert json.loads(body) == error
    assert [name for name, *_ in received] == ["started", "finished"]
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_a_bad_host_is_400_before_the_body_is_read(async_db, guarded):
    status, body, pulled = await call(guarded, [b"id=%2B1&text=hi"], [(b"host", b"evil.example")],
                                      path=KANNEL, query=b"token=s3cret")
    assert (status, pulled) == (400, 0)
    assert "evil.example" in json.loads(body)["error"]


@pytest.mark.asyncio
async def test_with_the_right_token_the_body_is_read_and_the_message_stored(async_db, guarded):
    status, _, pulled = await call(guarded, [b"id=%2B1&", b"text=echo+hi"], path=KANNEL,
                                   query=b"token=s3cret")
    assert (status, pulled) == (200, 2)
    assert await Message.objects.filter(direction="in", text="echo hi").acount() == 1


@pytest.mark.asyncio
async def test_a_signature_over_the_body_is_checked_after_reading_it_and_within_the_limit(
        async_db, guarded, settings):
    """Twilio signs the body, so its refusal comes once the body is read; a body over the
    limit is refused first, unread."""
    settings.INSTALLED_BACKENDS = {"twilio": {
        "ENGINE": "smsrouter.backends.twilio.TwilioBackend", "account_sid": "AC1",
        "auth_token": "t0ken"}}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    form = b"From=%2B1&Body=hi"
    status, body, pulled = await call(guarded, [form], path="/backend/twilio/")
    assert (status, pulled) == (403, 1)
    assert "X-Twilio-Signature" in json.loads(body)["error"]
    status, _, pulled = await call(guarded, [form] * 10, path="/backend/twilio/")
    assert (status, pulled) == (413, 6)
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
@pytest.mark.parametrize("debug", [True, False])
async def test_the_404_names_the_configured_backends_only_with_debug_on(
        async_db, guarded, settings, debug):
    settings.DEBUG = debug
    status, body, _ = await call(guarded, [b""], path="/backend/nope/")
    error = json.loads(body)["error"]
    assert status == 404
    assert ("httptester-public" in error and "kannel" in error) is debug
    assert error.startswith("No backend named 'nope'")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/httptester/", "/admin/login/"])
async def test_a_page_whose_request_django_cannot_build_is_400_not_500(async_db, application, path):
    """Django's handler answers 500 when building the request raises TooManyFieldsSent (a
    query of too many fields, with a charset in the Content-Type)."""
    query = "&".join(f"f{n}=1" for n in range(1001)).encode()
    status, body, _ = await call(application, [b""], [(b"content-type", b"text/plain; charset=utf-8")],
                                 path=path, query=query, method="GET")
    assert status == 400 and "Bad request" in json.loads(body)["error"]
