"""The ASGI root: /res/ resources ahead of Django, lifespan activation, the bridge into the
server loop, and live httptester conversations over WebSocket. Driven in-process with
Channels' communicators, in the test's own event loop (which plays the server's)."""

import asyncio
import gc
import os
import subprocess
import sys
import threading

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.test import Client

from smsrouter import loop
from smsrouter.api import aincoming
from smsrouter.asgi import build_application, get_application
from smsrouter.models import Message
from tests import apps



@pytest.fixture
def application(settings):
    apps.calls.clear()
    settings.ROOT_URLCONF = "tests.urls"
    settings.SMSROUTER_APPS = ["tests.apps.Probe", "tests.apps.TcpEcho", "smsrouter.contrib.echo.EchoApp"]
    return build_application(get_asgi_application())


class Lifespan:
    """Starts and stops the application as an ASGI server would."""

    def __init__(self, application):
        self.communicator = ApplicationCommunicator(application, {"type": "lifespan"})

    async def start(self):
        await self.communicator.send_input({"type": "lifespan.startup"})
        return await self.communicator.receive_output(timeout=5)

    async def stop(self):
        await self.communicator.send_input({"type": "lifespan.shutdown"})
        return await self.communicator.receive_output(timeout=5)


@pytest_asyncio.fixture
async def started(application):
    lifespan = Lifespan(application)
    assert await lifespan.start() == {"type": "lifespan.startup.complete"}
    yield application
    assert await lifespan.stop() == {"type": "lifespan.shutdown.complete"}


async def get(application, path):
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"127.0.0.1")])
    response = await communicator.get_response(timeout=5)
    await communicator.send_input({"type": "http.disconnect"})  # as a client hanging up
    await communicator.wait(timeout=5)  # Django's handler closes its request body file
    return response["status"], response["body"]


@pytest.mark.asyncio
async def test_a_resource_is_served_ahead_of_a_django_url_of_the_same_path(started):
    status, body = await get(started, "/res/probe/hello?name=Amina")
    assert (status, body) == (200, b'{"hello": "Amina", "app": "probe"}')


@pytest.mark.parametrize("path", ["/res/nope/hello", "/res/probe/nope"])
@pytest.mark.asyncio
async def test_an_unknown_app_or_resource_is_404(started, path):
    status, body = await get(started, path)
    assert status == 404 and b"No resource" in body


@pytest.mark.asyncio
async def test_an_unknown_url_is_djangos_404_not_a_500(started):
    status, _ = await get(started, "/no/such/page/")
    assert status == 404


@pytest.mark.asyncio
async def test_a_failing_resource_is_a_500_with_a_pointer_to_the_log(started):
    assert await get(started, "/res/probe/broken") == (
        500, b'{"error": "The resource failed; the server log says why."}')


@pytest.mark.asyncio
async def test_a_resource_awaits_slow_io_while_others_are_served(started):
    """No thread is held: a waiting request lets the one that releases it through."""
    waiting = asyncio.create_task(get(started, "/res/probe/wait"))
    assert await get(started, "/res/probe/release") == (200, b"ok")
    assert await asyncio.wait_for(waiting, 5) == (200, b"released")


@pytest.mark.asyncio
async def test_lifespan_activates_apps_in_order_and_deactivates_them(application):
    lifespan = Lifespan(application)
    await lifespan.start()
    assert apps.calls == ["Probe.activate"]
    await lifespan.stop()
    assert apps.calls == ["Probe.activate", "Probe.deactivate"]


@pytest.mark.asyncio
async def test_what_startup_made_is_frozen_out_of_the_collector_until_shutdown(application):
    lifespan = Lifespan(application)
    await lifespan.start()
    frozen = gc.get_freeze_count()
    await lifespan.stop()
    assert frozen > 10_000  # Django, the URLconf, the apps: a full collection walks none of it
    assert gc.get_freeze_count() == 0


@pytest.mark.asyncio
async def test_an_app_opens_a_tcp_server_reached_by_a_real_socket(application):
    lifespan = Lifespan(application)
    await lifespan.start()
    port = loop.server_loop() and _activated_port(application)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    assert await asyncio.wait_for(reader.readline(), 5) == b"ping\n"
    writer.close()
    await lifespan.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def _activated_port(application):
    resources = application.application_mapping["lifespan"].apps
    return resources["tcpecho"].port


@pytest.mark.asyncio
async def test_a_failing_activate_fails_the_startup_naming_the_app(application, settings):
    settings.SMSROUTER_APPS = ["tests.apps.Probe", "tests.apps.BrokenActivate"]
    lifespan = Lifespan(build_application(get_asgi_application()))
    assert await lifespan.start() == {
        "type": "lifespan.startup.failed",
        "message": "App BrokenActivate: activate() failed: OSError: port 2775 is taken"}
    assert apps.calls[-1] == "Probe.deactivate"  # what had started is stopped again


@pytest.mark.asyncio
async def test_the_bridge_runs_work_in_the_server_loop_from_a_thread(started):
    server_loop = asyncio.get_running_loop()
    called = asyncio.Event()

    async def where():
        return asyncio.get_running_loop() is server_loop

    def blocking_code():
        loop.call_from_thread(called.set)
        return loop.run_in_loop(where(), timeout=5), threading.current_thread()

    in_loop, thread = await asyncio.to_thread(blocking_code)
    assert in_loop and thread is not threading.current_thread()
    await asyncio.wait_for(called.wait(), 5)


@pytest.mark.asyncio
async def test_the_bridge_refuses_to_wait_for_itself(started):
    async def nothing():
        return None

    with pytest.raises(RuntimeError, match="await the coroutine instead"):
        loop.run_in_loop(nothing())


@pytest.mark.asyncio
async def test_the_bridge_times_out_and_cancels(started):
    cancelled = asyncio.Event()

    async def forever():
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    with pytest.raises(TimeoutError):
        await asyncio.to_thread(loop.run_in_loop, forever(), 0.05)
    await asyncio.wait_for(cancelled.wait(), 5)


def test_without_a_server_loop_the_bridge_says_what_to_do():
    loop.set_server_loop(None)
    with pytest.raises(loop.NoServerLoop, match="lifespan on"):
        loop.call_from_thread(print)


LIVE = "/ws/httptester/httptester-public/+255700000001/"
SAME_SITE = b"http://127.0.0.1:8000"  # ALLOWED_HOSTS has 127.0.0.1; the Origin's port is free
ELSEWHERE = ("203.0.113.7", 50123)  # TEST-NET-3: a client that is not on this machine


def websocket(application, path, *, origin=SAME_SITE, client=("127.0.0.1", 50123), cookie=None):
    """A WebSocket as a browser opens it: from the page's Origin, and a client address as
    the server puts it in the scope (the communicator sets none)."""
    async def served(scope, receive, send):
        await application({**scope, "client": client}, receive, send)

    headers = [(b"origin", origin)] if origin else []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(served, path, headers=headers)


@pytest.fixture
def developer(settings):
    """With DEBUG on, a client on this machine needs no login (as under `make run`)."""
    settings.DEBUG = True


@sync_to_async
def staff_session_cookie(is_staff=True):
    browser = Client()
    browser.force_login(User.objects.create_user("amina", password="pw", is_staff=is_staff))
    return f"sessionid={browser.cookies['sessionid'].value}"


@pytest.mark.asyncio
async def test_a_conversation_is_live_over_websocket(async_db, application, developer):
    """Each new message and each status change arrives as one frame, in order. Without a
    server scheduler the caller sends the reply, so it is stored already claimed."""
    socket = websocket(application, LIVE)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await aincoming("httptester-public", "+255700000001", "echo live")
    frames = [await socket.receive_json_from(timeout=5) for _ in range(4)]
    assert [(f["direction"], f["text"], f["status"]) for f in frames] == [
        ("in", "echo live", "received"), ("in", "echo live", "handled"),
        ("out", "live", "sending"), ("out", "live", "sent")]
    assert set(frames[0]) == {"direction", "text", "status", "created_at"}
    await aincoming("httptester-private", "+255700000001", "echo elsewhere")
    assert await socket.receive_nothing(timeout=0.1)
    await socket.disconnect()


@pytest.mark.parametrize("path", ["/ws/httptester/nope/+1/", "/ws/elsewhere/"])
@pytest.mark.asyncio
async def test_a_socket_for_no_conversation_is_refused(application, developer, path):
    connected, _ = await websocket(application, path).connect(timeout=5)
    assert not connected


@pytest.mark.parametrize("origin", [b"http://evil.example", b"http://127.0.0.1.evil.example",
                                    b"null", None])
@pytest.mark.asyncio
async def test_a_page_of_another_site_or_no_origin_is_refused_before_any_consumer(
        application, developer, origin):
    """AllowedHostsOriginValidator: what would be accepted from the site's own page is
    refused from another's (which a browser names in Origin), and without an Origin."""
    assert await websocket(application, LIVE, origin=origin).connect(timeout=5) == (False, 1000)
    connected, _ = await websocket(application, LIVE).connect(timeout=5)
    assert connected


@pytest.mark.asyncio
async def test_an_anonymous_socket_from_elsewhere_is_refused(async_db, application, developer):
    assert await websocket(application, LIVE, client=ELSEWHERE).connect(timeout=5) == (
        False, 4403)
    user_cookie = await staff_session_cookie(is_staff=False)
    assert await websocket(application, LIVE, client=ELSEWHERE, cookie=user_cookie).connect(
        timeout=5) == (False, 4403)


@pytest.mark.asyncio
async def test_a_staff_users_socket_is_accepted_from_anywhere_with_debug_off(
        async_db, application, settings):
    """The session cookie the admin login set: AuthMiddlewareStack reads the user."""
    settings.SMSROUTER_HTTPTESTER = True
    assert await websocket(application, LIVE).connect(timeout=5) == (False, 4403)  # DEBUG off
    socket = websocket(application, LIVE, client=ELSEWHERE, cookie=await staff_session_cookie())
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await aincoming("httptester-public", "+255700000001", "echo staff")
    frame = await socket.receive_json_from(timeout=5)
    assert (frame["direction"], frame["text"]) == ("in", "echo staff")
    await socket.disconnect()


@pytest.mark.parametrize(("setting", "debug"), [(False, True), (None, False)])
@pytest.mark.asyncio
async def test_off_the_socket_is_closed_as_not_found_even_for_staff(
        async_db, application, settings, setting, debug):
    settings.SMSROUTER_HTTPTESTER, settings.DEBUG = setting, debug
    cookie = await staff_session_cookie()
    assert await websocket(application, LIVE, cookie=cookie).connect(timeout=5) == (False, 4404)


async def post_form(application, path, body, host=b"127.0.0.1"):
    communicator = HttpCommunicator(application, "POST", path, body=body, headers=[
        (b"host", host), (b"content-type", b"application/x-www-form-urlencoded")])
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)
    return response["status"], response["body"]


@pytest.fixture
def teapot(settings):
    """Django's stack answers 418 to everything that crosses it."""
    settings.ROOT_URLCONF = "tests.urls"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.Teapot"]
    return build_application(get_asgi_application())


@pytest.mark.asyncio
async def test_a_webhook_is_served_ahead_of_djangos_middleware_and_a_page_is_not(async_db, teapot):
    status, _ = await post_form(teapot, "/backend/form/", b"identity=%2B1&text=echo+fast")
    assert status == 200
    assert await Message.objects.filter(direction="out", text="fast", status="sent").aexists()
    assert (await get(teapot, "/httptester/"))[0] == 418


@pytest.mark.asyncio
async def test_without_the_fast_path_a_webhook_crosses_the_middleware(async_db, teapot, settings):
    settings.SMSROUTER_WEBHOOK_FAST_PATH = False
    status, _ = await post_form(teapot, "/backend/form/", b"identity=%2B1&text=echo+x")
    assert status == 418
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_a_webhook_keeps_the_views_refusals_and_allowed_hosts(async_db, teapot):
    status, body = await post_form(teapot, "/backend/nope/", b"identity=%2B1&text=hi")
    assert status == 404 and b"nope" in body
    status, body = await post_form(teapot, "/backend/form/", b"text=hi")
    assert status == 400 and b"identity" in body
    status, body = await post_form(teapot, "/backend/form/", b"identity=%2B1&text=hi",
                                   host=b"evil.example")
    assert status == 400 and b"evil.example" in body
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_lifespan_runs_the_scheduler_that_sends_this_processs_replies(async_db, served):
    """A webhook is answered once committed; the server's own sender sends its reply."""
    from asgiref.sync import sync_to_async

    from smsrouter import sender

    communicator = HttpCommunicator(served, "POST", "/backend/form/",
                                    body=b"identity=%2B1&text=echo+hi",
                                    headers=[(b"host", b"127.0.0.1"),
                                             (b"content-type", b"application/x-www-form-urlencoded")])
    assert (await communicator.get_response(timeout=5))["status"] == 200
    assert sender.wake_local([]) is True  # a scheduler serves this process

    def reply():
        return Message.objects.filter(direction="out").values_list("text", "status").first()

    async with asyncio.timeout(5):
        while await sync_to_async(reply)() != ("hi", "sent"):
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_lifespan_shutdown_stops_the_scheduler(application):
    from smsrouter import sender

    lifespan = Lifespan(application)
    assert await lifespan.start() == {"type": "lifespan.startup.complete"}
    assert await lifespan.stop() == {"type": "lifespan.shutdown.complete"}
    assert sender.wake_local([]) is False  # commits now send in the caller


def test_the_module_imports_before_django_is_set_up():
    """A project's asgi.py imports get_application before it can set Django up."""
    done = subprocess.run(
        [sys.executable, "-c", "from smsrouter.asgi import get_application"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings"},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def get_streamed(application, path):
    """A GET whose answer may stream, as a file's does: ASGI lets its last message leave
    out "body", which HttpCommunicator does not take."""
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=5)
    body = b""
    while True:
        message = await communicator.receive_output(timeout=5)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=5)
    return start["status"], body


@pytest.mark.asyncio
async def test_get_application_serves_static_files_and_the_rest(settings):
    """What Django's get_asgi_application leaves out: static files (the tester's CSS), and
    the root around it (its resources)."""
    settings.ROOT_URLCONF = "tests.urls"
    settings.SMSROUTER_APPS = ["tests.apps.Probe"]
    application = get_application()
    status, body = await get_streamed(application, "/static/httptester/httptester.css")
    assert status == 200 and body
    assert (await get_streamed(application, "/static/httptester/nope.css"))[0] == 404
    lifespan = Lifespan(application)
    assert await lifespan.start() == {"type": "lifespan.startup.complete"}
    assert (await get(application, "/res/probe/hello?name=Amina"))[0] == 200
    assert await lifespan.stop() == {"type": "lifespan.shutdown.complete"}
