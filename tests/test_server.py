"""The demo served by uvicorn in its own process, driven over real HTTP on loopback."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.processes

TIMEOUT = 10


def post(url, **fields):
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(url, data, timeout=TIMEOUT) as response:
        return response.status, response.read()


def get(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.status, response.read()


def texts(base, backend, identity):
    """The conversation once its replies are settled: the webhook is answered when they
    are committed, and the server's sender sends them just after (10 s at most here)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        _, body = get(f"{base}/httptester/{backend}/{urllib.parse.quote(identity)}/messages")
        conversation = [(m["direction"], m["text"], m["status"]) for m in json.loads(body)["messages"]]
        if not {status for *_, status in conversation} & {"queued", "sending"}:
            return conversation
        if time.monotonic() > deadline:
            pytest.fail(f"replies still unsent after {TIMEOUT} s: {conversation}")
        time.sleep(0.02)


def number():
    return f"+2557{uuid.uuid4().int % 10**8:08d}"


def test_the_seeds_urllib_example_answers_ok_on_both_backends(demo_server):
    """The example from the threadless-router docs, in today's urllib."""
    identity = number()
    data = urllib.parse.urlencode({"identity": identity, "text": "echo hello"}).encode()
    for backend in ("httptester-public", "httptester-private"):
        url = f"{demo_server}/httptester/{backend}/"
        assert urllib.request.urlopen(url, data, timeout=TIMEOUT).read() == b"OK"
        assert texts(demo_server, backend, identity) == [
            ("in", "echo hello", "handled"), ("out", "hello", "sent")]


def test_the_backend_webhook_url_routes_too(demo_server):
    identity = number()
    assert post(f"{demo_server}/backend/httptester-private/", identity=identity, text="add 2 3") == (
        200, b"OK")
    assert texts(demo_server, "httptester-private", identity)[-1] == ("out", "2 + 3 = 5", "sent")


def test_bad_requests_get_their_status_codes(demo_server):
    for url, data, status in [
        (f"{demo_server}/httptester/httptester-public/", {"text": "hi"}, 400),
        (f"{demo_server}/httptester/nope/", {"identity": "1", "text": "hi"}, 404),
        (f"{demo_server}/backend/nope/", {"identity": "1", "text": "hi"}, 404),
        (f"{demo_server}/no/such/page/", None, 404),
    ]:
        try:
            if data is None:
                get(url)
            else:
                post(url, **data)
        except urllib.error.HTTPError as error:
            assert error.code == status, url
        else:
            raise AssertionError(f"{url} answered 2xx")


def test_the_page_and_its_static_files_are_served(demo_server):
    status, page = get(f"{demo_server}/")
    assert status == 200 and b"httptester-public" in page
    assert get(f"{demo_server}/static/admin/css/base.css")[0] == 200


def test_concurrent_messages_are_all_accepted_and_answered(demo_server):
    """Forty messages from eight numbers at once: every one stored, routed and answered."""
    identities = [number() for _ in range(8)]
    jobs = [(identity, f"echo {n}") for n in range(5) for identity in identities]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(
            lambda job: post(f"{demo_server}/httptester/httptester-public/",
                             identity=job[0], text=job[1]), jobs))
    assert results == [(200, b"OK")] * len(jobs)
    for identity in identities:
        conversation = texts(demo_server, "httptester-public", identity)
        assert sorted(text for direction, text, _ in conversation if direction == "out") == [
            str(n) for n in range(5)]
        assert {status for _, _, status in conversation} == {"handled", "sent"}


def test_a_websocket_sees_the_conversation_live(demo_server):
    """Through uvicorn: each new message and status change of the conversation is a frame."""
    from websockets.sync.client import connect

    identity = number()
    ws_url = demo_server.replace("http://", "ws://") + (
        f"/ws/httptester/httptester-public/{urllib.parse.quote(identity)}/")
    with connect(ws_url, origin=demo_server, open_timeout=TIMEOUT) as socket:  # as the page
        post(f"{demo_server}/httptester/httptester-public/", identity=identity, text="ping")
        frames = [json.loads(socket.recv(timeout=TIMEOUT)) for _ in range(4)]
    assert [(f["direction"], f["text"], f["status"]) for f in frames] == [
        ("in", "ping", "received"), ("in", "ping", "handled"),
        ("out", "pong", "queued"), ("out", "pong", "sent")]


def test_an_unknown_websocket_path_is_refused(demo_server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus, match="403"):
        connect(demo_server.replace("http://", "ws://") + "/ws/nowhere/", open_timeout=TIMEOUT)


def test_an_apps_resource_is_served_by_the_demo(demo_server):
    """/res/stats/messages: the demo's StatsApp, ahead of Django, in the server's loop."""
    post(f"{demo_server}/httptester/httptester-public/", identity=number(), text="ping")
    status, body = get(f"{demo_server}/res/stats/messages")
    counts = json.loads(body)
    assert status == 200 and counts["in:handled"] >= 1 and counts["out:sent"] >= 1
