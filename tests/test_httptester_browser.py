"""The httptester page driven in a real headless Chromium against the demo under uvicorn.

Every wait is one of Playwright's auto-retrying `expect` assertions, bounded by TIMEOUT_MS:
the page polls the conversation about once a second and refreshes right after a send.
"""

import os
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.processes]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 10_000
EMPTY_HINT = "Send “ECHO hello” to try"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
