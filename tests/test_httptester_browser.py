"""The httptester page driven in a real headless Chromium against the demo under uvicorn.

The demo runs with DEBUG on, where this machine's browser needs no login; the last tests
serve tests/deploy_settings.py (DEBUG off, SMSROUTER_HTTPTESTER = True), where only a
staff user, logged in through the admin, gets the page, the posts and the WebSocket.

Every wait is one of Playwright's auto-retrying `expect` assertions, bounded by TIMEOUT_MS:
the page polls the conversation about once a second and refreshes right after a send.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import browser, site_with_staff  # noqa: F401  (browser: a fixture)
from tests.stack import serving

pytestmark = [pytest.mark.browser, pytest.mark.processes]

TIMEOUT_MS = 10_000
EMPTY_HINT = "Send “ECHO hello” to try"


@pytest.fixture
def page(browser: Browser, demo_server: str) -> Iterator[Page]:
    """A fresh context (so an empty localStorage) with the tester page open."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{demo_server}/httptester/")
    try:
        yield page
    finally:
        context.close()


def unique_number() -> str:
    return f"+2557{uuid.uuid4().int % 10**8:08d}"


def open_conversation(page: Page, backend: str, number: str) -> None:
    page.get_by_label("Backend").select_option(backend)
    page.get_by_label("Phone number").fill(number)
    expect(page.get_by_text(EMPTY_HINT)).to_be_visible()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def bubble_texts(page: Page, direction: str = ""):
    return page.get_by_role("log").locator(f".msg{'-' + direction if direction else ''} .msg-text")


def test_send_and_see_the_reply_without_reload(page: Page) -> None:
    """Enter sends the message with fetch: the inbound bubble and the echoed reply, status
    "sent", appear in the same document (no navigation), and the message box is cleared."""
    open_conversation(page, "httptester-public", unique_number())
    url = page.url
    page.evaluate("window.sameDocument = true")

    box = page.get_by_label("Message", exact=True)
    box.fill("echo hello")
    box.press("Enter")

    expect(bubble_texts(page, "in")).to_have_text(["echo hello"])
    expect(bubble_texts(page, "out")).to_have_text(["hello"])
    expect(page.get_by_role("log").locator(".msg-out .msg-status")).to_have_text(["sent"])
    expect(box).to_have_value("")
    expect(page.get_by_text(EMPTY_HINT)).to_be_hidden()
    assert page.url == url
    assert page.evaluate("window.sameDocument") is True


def test_backends_are_separate_conversations(page: Page) -> None:
    """The same number on another backend is another conversation: httptester-private shows
    none of the public messages, and switching back shows them again."""
    number = unique_number()
    open_conversation(page, "httptester-public", number)
    send(page, "echo public only")
    expect(bubble_texts(page)).to_have_text(["echo public only", "public only"])

    page.get_by_label("Backend").select_option("httptester-private")
    expect(page.get_by_text(EMPTY_HINT)).to_be_visible()
    expect(bubble_texts(page)).to_have_count(0)
    send(page, "ping")
    expect(bubble_texts(page)).to_have_text(["ping", "pong"])

    page.get_by_label("Backend").select_option("httptester-public")
    expect(bubble_texts(page)).to_have_text(["echo public only", "public only"])


def test_random_number_and_empty_message(page: Page) -> None:
    """The random-number button fills in a +2557XXXXXXXX number (Send is disabled without
    one), and an empty message is a valid SMS: it gets the default reply."""
    identity = page.get_by_label("Phone number")
    identity.fill("")
    expect(page.get_by_text("Enter a phone number to start.")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()

    page.get_by_role("button", name="Random number").click()
    expect(identity).to_have_value(re.compile(r"^\+2557\d{8}$"))
    expect(page.get_by_text(EMPTY_HINT)).to_be_visible()

    send(page, "")
    expect(bubble_texts(page, "in")).to_have_text([""])
    expect(bubble_texts(page, "out")).to_have_text([re.compile(r"^Sorry")])


def test_message_text_is_escaped(page: Page) -> None:
    """Markup in a message is shown as literal text, never parsed into elements."""
    open_conversation(page, "httptester-public", unique_number())
    send(page, "echo <b>x</b>")
    expect(bubble_texts(page)).to_have_text(["echo <b>x</b>", "<b>x</b>"])
    expect(page.get_by_role("log").locator("b")).to_have_count(0)


def test_number_and_backend_are_remembered(page: Page) -> None:
    """The number and the backend survive a reload (localStorage), with their conversation."""
    number = unique_number()
    open_conversation(page, "httptester-private", number)
    send(page, "add 2 3")
    expect(bubble_texts(page, "out")).to_have_text(["2 + 3 = 5"])

    page.reload()
    expect(page.get_by_label("Phone number")).to_have_value(number)
    expect(page.get_by_label("Backend")).to_have_value("httptester-private")
    expect(bubble_texts(page)).to_have_text(["add 2 3", "2 + 3 = 5"])


def test_the_conversation_is_live_over_a_websocket(page: Page, demo_server: str) -> None:
    """With the socket open the page stops polling, and a message that another phone (here
    urllib) sends into the conversation appears with its reply, without any page request."""
    number = unique_number()
    open_conversation(page, "httptester-public", number)
    expect(page.locator("#httptester")).to_have_attribute("data-transport", "websocket")
    polls = []
    page.on("request", lambda request: polls.append(request.url) if "/messages" in request.url else None)
    data = urllib.parse.urlencode({"identity": number, "text": "echo from elsewhere"}).encode()
    assert urllib.request.urlopen(f"{demo_server}/httptester/httptester-public/", data,
                                  timeout=10).read() == b"OK"
    expect(bubble_texts(page, "in")).to_have_text(["echo from elsewhere"])
    expect(bubble_texts(page, "out")).to_have_text(["from elsewhere"])
    expect(page.get_by_role("log").locator(".msg-out .msg-status")).to_have_text(["sent"])
    assert polls == []


STAFF = ("staff", "a-password-for-the-browser-test")


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tests/deploy_settings.py under uvicorn, on a fresh SQLite file with one staff user."""
    env = site_with_staff(tmp_path_factory.mktemp("production") / "db.sqlite3",
                          "tests.deploy_settings", STAFF)
    with serving(env) as (port, _):
        yield f"http://127.0.0.1:{port}"


def test_with_debug_off_a_staff_user_logs_in_through_the_admin_and_chats_live(
        browser: Browser, production_server: str) -> None:
    """The page sends an anonymous visitor to the admin's login, and back after it; then
    posts (with the page's CSRF token), the conversation and the WebSocket all work."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{production_server}/httptester/")
        expect(page).to_have_url(f"{production_server}/admin/login/?next=/httptester/")
        page.get_by_label("Username").fill(STAFF[0])
        page.get_by_label("Password").fill(STAFF[1])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{production_server}/httptester/")
        open_conversation(page, "httptester-public", unique_number())
        expect(page.locator("#httptester")).to_have_attribute("data-transport", "websocket")
        send(page, "echo as staff")
        expect(bubble_texts(page, "out")).to_have_text(["as staff"])
        expect(page.get_by_role("log").locator(".msg-out .msg-status")).to_have_text(["sent"])
    finally:
        context.close()


def test_with_debug_off_this_machine_needs_a_login_too(production_server: str) -> None:
    """The loopback exception is for DEBUG on: the README's urllib example is refused."""
    data = urllib.parse.urlencode({"identity": unique_number(), "text": "echo hi"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{production_server}/httptester/httptester-public/", data,
                               timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read()) == {
        "error": "The httptester is for staff users: log in at /admin/login/ first."}


def test_the_server_refuses_a_websocket_from_another_sites_page(demo_server: str) -> None:
    """Through uvicorn: the handshake from a foreign Origin (or none) is refused with 403,
    the same socket from the site's own page is accepted."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = demo_server.replace("http://", "ws://") + "/ws/httptester/httptester-public/%2B1/"
    for origin in ("http://evil.example", None):
        with pytest.raises(InvalidStatus, match="403"):
            connect(url, origin=origin, open_timeout=10)
    with connect(url, origin=demo_server, open_timeout=10) as socket:
        assert socket.protocol.state.name == "OPEN"
