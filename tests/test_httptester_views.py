"""The httptester endpoints of ARCHITECTURE.md §4, through Django's test client, and who
they are served to: staff users, or with DEBUG on a client on this machine; nobody when off."""

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from smsrouter.contrib.httptester.access import is_loopback
from smsrouter.models import Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)

ELSEWHERE = "203.0.113.7"  # TEST-NET-3: a client that is not on this machine
POST = ("/httptester/httptester-public/", {"identity": "1", "text": "echo hi"})


@pytest.fixture(autouse=True)
def demo_like(settings):
    settings.INSTALLED_BACKENDS = {
        "httptester-public": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "httptester-private": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "gateway": {"ENGINE": "tests.backends.RecordingBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry, I didn't understand."
    settings.SMSROUTER_HTTPTESTER = True  # DEBUG is off under pytest


def user(username="amina", **flags):
    return User.objects.create_user(username, password="pw", **flags)


@pytest.fixture
def client(db):
    """A staff user's browser, on another machine: allowed whatever DEBUG says."""
    browser = Client(REMOTE_ADDR=ELSEWHERE)
    browser.force_login(user(is_staff=True))
    return browser


def conversation(client, backend, identity):
    response = client.get(f"/httptester/{backend}/{identity}/messages")
    assert response.status_code == 200
    return response.json()["messages"]


def test_post_answers_ok_and_the_conversation_is_json_oldest_first(client):
    response = client.post("/httptester/httptester-public/", {"identity": "1112223333", "text": "echo hello"})
    assert (response.status_code, response.content) == (200, b"OK")
    messages = conversation(client, "httptester-public", "1112223333")
    assert [(m["direction"], m["text"], m["status"]) for m in messages] == [
        ("in", "echo hello", "handled"), ("out", "hello", "sent")]
    assert all(set(m) == {"direction", "text", "status", "created_at"} for m in messages)
    assert datetime.fromisoformat(messages[0]["created_at"]) <= datetime.fromisoformat(
        messages[1]["created_at"])


def test_the_two_backends_are_separate_conversations(client):
    """The seed's example: the backend is chosen by the URL."""
    client.post("/httptester/httptester-public/", {"identity": "1112223333", "text": "echo public"})
    client.post("/httptester/httptester-private/", {"identity": "1112223333", "text": "echo private"})
    assert [m["text"] for m in conversation(client, "httptester-private", "1112223333")] == [
        "echo private", "private"]
    assert [m["text"] for m in conversation(client, "httptester-public", "1112223333")] == [
        "echo public", "public"]


def test_identities_with_a_plus_round_trip(client):
    client.post("/httptester/httptester-public/", {"identity": "+255700000001", "text": "ping"})
    assert [m["text"] for m in conversation(client, "httptester-public", "+255700000001")] == [
        "ping", "pong"]


def test_an_empty_text_is_a_valid_sms(client):
    response = client.post("/httptester/httptester-public/", {"identity": "1", "text": ""})
    assert response.status_code == 200
    assert [m["text"] for m in conversation(client, "httptester-public", "1")] == [
        "", "Sorry, I didn't understand."]


@pytest.mark.parametrize(("data", "field"), [({"text": "hi"}, "identity"), ({"identity": "1"}, "text")])
def test_a_missing_field_is_400_naming_it_and_nothing_is_written(client, data, field):
    response = client.post("/httptester/httptester-public/", data)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field} is required")
    assert not Message.objects.exists()


@pytest.mark.parametrize("backend", ["nope", "gateway"])
def test_only_httptester_backends_take_posts(client, backend, settings):
    """An unknown backend, or one that is not an httptester, is 404; the tester backends'
    names are listed only with DEBUG on."""
    response = client.post(f"/httptester/{backend}/", {"identity": "1", "text": "hi"})
    assert (response.status_code, response.json()) == (
        404, {"error": f"No httptester backend named {backend!r}."})
    assert client.get(f"/httptester/{backend}/1/messages").status_code == 404
    settings.DEBUG = True
    response = client.post(f"/httptester/{backend}/", {"identity": "1", "text": "hi"})
    assert response.status_code == 404
    assert "httptester-private, httptester-public" in response.json()["error"]
    assert not Message.objects.exists()


def test_other_methods_are_405(client):
    assert client.get("/httptester/httptester-public/").status_code == 405
    assert client.put("/httptester/httptester-public/").status_code == 405
    assert client.post("/httptester/httptester-public/1/messages").status_code == 405
    assert client.post("/httptester/").status_code == 405


def test_the_conversation_is_never_cached_and_ignores_surrounding_spaces(client):
    """The page polls it; the identity is trimmed as it was when the message was posted."""
    client.post("/httptester/httptester-public/", {"identity": " +1 ", "text": "ping"})
    response = client.get("/httptester/httptester-public/%20+1%20/messages")
    assert "no-cache" in response["Cache-Control"]
    assert [m["text"] for m in response.json()["messages"]] == ["ping", "pong"]


def test_an_unknown_number_has_an_empty_conversation(client):
    assert conversation(client, "httptester-public", "999") == []


def test_the_conversation_is_bounded_to_the_newest_messages(client, settings, monkeypatch):
    from smsrouter.contrib.httptester import views

    monkeypatch.setattr(views, "CONVERSATION_LIMIT", 3)
    for n in range(3):
        client.post("/httptester/httptester-public/", {"identity": "1", "text": f"echo {n}"})
    assert [m["text"] for m in conversation(client, "httptester-public", "1")] == ["1", "echo 2", "2"]


def test_the_page_lists_the_httptester_backends(client):
    response = client.get("/httptester/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "httptester-public" in page and "httptester-private" in page
    assert "gateway" not in page


# Who the tester is served to.


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), (ELSEWHERE, False), ("::2", False),
    ("localhost", False), ("", False), (None, False),
])
def test_loopback_is_127_0_0_0_slash_8_and_ipv6_1_only(address, loopback):
    assert is_loopback(address) is loopback


def test_an_anonymous_client_elsewhere_is_sent_to_log_in_and_refused_403(settings):
    settings.DEBUG = True  # even so: the exception is for this machine only
    anonymous = Client(REMOTE_ADDR=ELSEWHERE)
    page = anonymous.get("/httptester/?from=x")
    assert (page.status_code, page["Location"]) == (
        302, "/admin/login/?next=/httptester/%3Ffrom%3Dx")
    read = anonymous.get("/httptester/httptester-public/1/messages")
    for response in (anonymous.post(*POST), read):
        assert (response.status_code, response.json()) == (
            403, {"error": "The httptester is for staff users: log in at /admin/login/ first."})
    assert not Message.objects.exists()


def test_a_user_who_is_not_staff_is_refused_too():
    browser = Client(REMOTE_ADDR=ELSEWHERE)
    browser.force_login(user())
    assert browser.get("/httptester/").status_code == 302
    assert browser.post(*POST).status_code == 403
    assert not Message.objects.exists()


def test_this_machine_needs_no_login_with_debug_on_only(settings):
    """`make run` and the README's urllib example; with DEBUG off, this machine is anyone."""
    local = Client()  # REMOTE_ADDR 127.0.0.1
    assert local.get("/httptester/").status_code == 302
    assert local.post(*POST).status_code == 403
    assert not Message.objects.exists()
    settings.DEBUG = True
    assert local.get("/httptester/").status_code == 200
    assert local.post(*POST).content == b"OK"
    assert [m["text"] for m in conversation(local, "httptester-public", "1")] == ["echo hi", "hi"]
    ipv6 = Client(REMOTE_ADDR="::1")
    assert ipv6.get("/httptester/httptester-public/1/messages").status_code == 200


def test_a_staff_user_elsewhere_is_served(client):
    assert client.get("/httptester/").status_code == 200
    assert client.post(*POST).content == b"OK"
    assert [m["text"] for m in conversation(client, "httptester-public", "1")] == ["echo hi", "hi"]


@pytest.mark.parametrize(("setting", "debug"), [(False, True), (False, False), (None, False)])
def test_off_every_endpoint_is_404_even_for_staff_and_nothing_is_written(
        client, settings, setting, debug):
    settings.SMSROUTER_HTTPTESTER, settings.DEBUG = setting, debug
    assert client.get("/httptester/").status_code == 404
    error = "The httptester is off (SMSROUTER_HTTPTESTER)." if debug else "Not found."
    for response in (client.post(*POST), client.get("/httptester/httptester-public/1/messages")):
        assert (response.status_code, response.json()) == (404, {"error": error})
    assert not Message.objects.exists()


def test_with_the_setting_left_out_the_tester_follows_debug(client, settings):
    del settings.SMSROUTER_HTTPTESTER
    assert client.get("/httptester/").status_code == 404
    settings.DEBUG = True
    assert client.get("/httptester/").status_code == 200


@pytest.mark.parametrize("value", ["True", "False", 1])
def test_only_true_itself_turns_it_on_with_debug_off(client, settings, value):
    """A string from the environment is not a yes: the tester stays off (and E090 says why)."""
    settings.SMSROUTER_HTTPTESTER = value
    assert client.post(*POST).status_code == 404
    assert not Message.objects.exists()


def test_a_staff_sessions_post_must_pass_the_csrf_check():
    """The post is csrf_exempt for urllib on this machine; a session's is not, or any site
    a staff user visits could post as them. The page sends the token it was given."""
    browser = Client(REMOTE_ADDR=ELSEWHERE, enforce_csrf_checks=True)
    browser.force_login(user(is_staff=True))
    refused = browser.post(*POST)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF check failed: CSRF cookie not set.")
    assert not Message.objects.exists()
    browser.get("/httptester/")  # sets the CSRF cookie, as the page's token
    token = browser.cookies["csrftoken"].value
    assert browser.post(*POST, headers={"X-CSRFToken": token}).content == b"OK"
