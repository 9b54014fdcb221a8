"""The webhook fast path keeps Django's contract: request signals once per webhook, in the
thread of the webhooks' database work; got_request_exception when a view raises; a 413 for
a body over DATA_UPLOAD_MAX_MEMORY_SIZE, read no further, with the fast path on or off.
Driven in-process, through the ASGI application as a server would call it."""

import asyncio
import json
import sys
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.core import signals

from smsrouter.backends.httptester import HttpTesterBackend
from smsrouter.models import Message
from smsrouter.signals import messages_changed
from smsrouter.webhooks import WebhookFastPath

INBOUND = "/backend/httptester-public/"


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

    monkeypatch.setattr(HttpTesterBackend, "parse_inbound", broken)
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
    assert "webhook /backend/httptester-public/ failed" in caplog.text


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


async def call(application, chunks, headers=()):
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

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": INBOUND, "raw_path": INBOUND.encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1"),
                         (b"content-type", b"application/x-www-form-urlencoded"), *headers]}
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
