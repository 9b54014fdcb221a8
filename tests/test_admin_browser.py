"""The admin's pages for support people in a real headless Chromium, against the demo under
uvicorn: a superuser logs in, and each page loads without a console error, reads at
1280 px, and does what it is for. A screenshot of each page goes to .artifacts/<test>.png.

The demo's database is seeded through the demo itself (SMS posted to the httptester
webhook from this machine, with DEBUG on, as the README's example does), plus two rows a
gateway would leave and the httptester cannot make: a failed send and a scheduled one.

Every wait is one of Playwright's auto-retrying `expect` assertions, bounded by TIMEOUT_MS.
"""

import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import browser, manage, site_with_staff  # noqa: F401  (browser: a fixture)
from tests.stack import serving

pytestmark = [pytest.mark.browser, pytest.mark.processes]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".artifacts"
TIMEOUT_MS = 10_000
SUPERUSER = ("support", "a-password-for-the-admin-browser-test")
VIEWPORT = {"width": 1280, "height": 800}
#: (backend, number, text) posted before the tests: each gets its echo, sent.
LONG = "echo " + "a long report from the clinic about the stock of test kits " * 3
SEED = [("httptester-public", "+255700000101", f"echo public {n}") for n in range(3)] + [
    ("httptester-private", "+255700000202", "echo private"),
    ("httptester-public", "+255700000303", LONG),
]
FAILED_ERROR = "gateway answered 503 (seeded)"
ORM_SEED = f"""
from datetime import timedelta
from django.utils import timezone
from smsrouter.models import Backend, Connection, Message
backend = Backend.objects.get(name="httptester-private")
connection = Connection.objects.get(backend=backend, identity="+255700000202")
Message.objects.create(direction="out", backend=backend, connection=connection,
                       text="never arrived", status="failed", error={FAILED_ERROR!r}, attempts=8)
Message.objects.create(direction="out", backend=backend, connection=connection,
                       text="see you tomorrow", status="queued",
                       due_at=timezone.now() + timedelta(days=1))
"""


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo (DEBUG on, inline) on a fresh SQLite file, with a superuser and SEED."""
    env = site_with_staff(tmp_path_factory.mktemp("admin") / "db.sqlite3", "demo.settings",
                          SUPERUSER)
    with serving(env) as (port, _):
        url = f"http://127.0.0.1:{port}"
        for backend, number, text in SEED:
            data = urllib.parse.urlencode({"identity": number, "text": text}).encode()
            answer = urllib.request.urlopen(f"{url}/httptester/{backend}/", data, timeout=10)
            assert answer.read() == b"OK"
        manage(env, "shell", "-c", ORM_SEED)
        yield url


@pytest.fixture(scope="module")
def logged_in(browser: Browser, admin_server: str) -> dict[str, Any]:
    """The superuser's session (cookies), logged in once through the admin's login form."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{admin_server}/admin/login/")
        page.get_by_label("Username").fill(SUPERUSER[0])
        page.get_by_label("Password").fill(SUPERUSER[1])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{admin_server}/admin/")
        return context.storage_state()
    finally:
        context.close()


class Console:
    """Every console error and uncaught page error of a page, as text."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self.errors.append(f"console: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))


@pytest.fixture
def page(browser: Browser, logged_in: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page of the logged-in superuser at 1280x800; its screenshot is saved after the
    test, passed or failed, as .artifacts/<test name>.png."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=VIEWPORT, storage_state=logged_in)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        screenshot(page, request.node.name)
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_message_list_shows_the_status_column_at_1280_px(page: Page, admin_server: str) -> None:
    """At 1280x800 the status column, header and cells, lies within the viewport, the text
    is cut short with the whole of it in the title, and each number links to its
    conversation."""
    console = Console(page)
    page.goto(f"{admin_server}/admin/smsrouter/message/")
    statuses = page.locator("#result_list td.field-status")
    expect(statuses.first).to_be_visible()
    for cell in [page.locator("#result_list th.column-status"), *statuses.all()]:
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box
    for scroller in ("document.documentElement", "document.querySelector('.results')"):
        assert page.evaluate(f"{scroller}.scrollWidth <= {scroller}.clientWidth"), scroller
    text = page.locator("#result_list td.field-short_text span", has_text="echo a long report")
    expect(text).to_have_attribute("title", LONG)
    shown = text.inner_text()
    assert len(shown) == 60 and shown.endswith("…"), shown
    number = page.locator("#result_list td.field-identity a", has_text="+255700000101").first
    expect(number).to_have_attribute(
        "href", re.compile(r"/admin/smsrouter/connection/\d+/conversation/$"))
    assert console.errors == []


def test_dashboard_draws_its_charts_from_the_seeded_messages(page: Page, admin_server: str) -> None:
    """Both charts have bars (a layer per backend), and the tables show the seeded failure,
    the scheduled message waiting in the outbox, and the send latency."""
    console = Console(page)
    page.goto(f"{admin_server}/admin/smsrouter/message/")
    page.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(f"{admin_server}/admin/smsrouter/message/dashboard/")
    for chart in ("#chart-hourly", "#chart-daily"):
        expect(page.locator(f"{chart} rect.bar").first).to_be_visible()
        expect(page.locator(f"{chart} g.series")).to_have_count(2)
        expect(page.locator(f"{chart} > title")).to_have_count(1)
    expect(page.locator("#chart-daily desc")).to_have_text(  # SEED and its echoes, ORM_SEED
        "12 messages in all; httptester-private: 4; httptester-public: 8")
    expect(page.locator("#top-errors tbody td")).to_have_text(["1", FAILED_ERROR])
    expect(page.locator("#outbox tbody td")).to_have_text(["httptester-private", "1", "0"])
    expect(page.locator("#latency tbody td:first-child")).to_have_text(
        ["httptester-private", "httptester-public"])
    assert console.errors == []


def test_connection_page_links_to_the_conversation(page: Page, admin_server: str,
                                                   request: pytest.FixtureRequest) -> None:
    """From the connection list to the connection's page, and from there, by its
    Conversation button, to the thread (a failed send with its error, a scheduled one)."""
    console = Console(page)
    page.goto(f"{admin_server}/admin/smsrouter/connection/")
    page.get_by_role("link", name="+255700000202").click()
    expect(page.get_by_role("heading", name="Change connection")).to_be_visible()
    screenshot(page, f"{request.node.name}-connection-page")
    page.get_by_role("link", name="Conversation", exact=True).click()
    expect(page.get_by_role("heading", name="Conversation with +255700000202")).to_be_visible()
    expect(page.locator(".bubble .bubble-error")).to_have_text([FAILED_ERROR])
    expect(page.locator(".bubble").last).to_contain_text("due ")
    assert console.errors == []


def test_conversation_sends_and_shows_the_message_sent(page: Page, admin_server: str) -> None:
    """The number in the message list opens its conversation (in and out, each with its
    status); a message written in the form is stored and sent, and appears at the bottom
    of the thread with status "sent". An SMS from the phone meanwhile appears, with its
    reply, without a reload (the page polls)."""
    console = Console(page)
    page.goto(f"{admin_server}/admin/smsrouter/message/?q=%2B255700000101")
    page.locator("#result_list td.field-identity a").first.click()
    expect(page.get_by_role("heading", name="Conversation with +255700000101")).to_be_visible()
    thread = page.get_by_role("log")
    expect(thread.locator(".bubble-in .bubble-text")).to_have_text(
        [f"echo public {n}" for n in range(3)])
    expect(thread.locator(".bubble-out .status-badge")).to_have_text(["sent"] * 3)

    page.get_by_label("Message to +255700000101").fill("Your test results are ready.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Message to +255700000101 stored")).to_be_visible()
    last = thread.locator(".bubble").last
    expect(last.locator(".bubble-text")).to_have_text("Your test results are ready.")
    expect(last.locator(".status-badge")).to_have_text("sent")
    expect(last).to_have_class(re.compile(r"\bbubble-out\b"))

    page.evaluate("window.sameDocument = true")
    data = urllib.parse.urlencode({"identity": "+255700000101", "text": "echo thanks"}).encode()
    assert urllib.request.urlopen(f"{admin_server}/httptester/httptester-public/", data,
                                  timeout=10).read() == b"OK"
    expect(thread.locator(".bubble-text").locator("nth=-2")).to_have_text("echo thanks")
    expect(thread.locator(".bubble").last.locator(".bubble-text")).to_have_text("thanks")
    expect(thread.locator(".bubble").last.locator(".status-badge")).to_have_text("sent")
    assert page.evaluate("window.sameDocument") is True
    assert console.errors == []
