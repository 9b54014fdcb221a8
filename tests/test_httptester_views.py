"""The httptester endpoints of ARCHITECTURE.md §4, through Django's test client."""

from datetime import datetime

import pytest

from smsrouter.models import Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def demo_like(settings):
    settings.INSTALLED_BACKENDS = {
        "httptester-public": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "httptester-private": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "gateway": {"ENGINE": "tests.backends.RecordingBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry, I didn't understand."


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
def test_only_httptester_backends_take_posts(client, backend):
    """An unknown backend, or one that is not an httptester, is 404."""
    response = client.post(f"/httptester/{backend}/", {"identity": "1", "text": "hi"})
    assert response.status_code == 404
    assert "httptester-private, httptester-public" in response.json()["error"]
    assert client.get(f"/httptester/{backend}/1/messages").status_code == 404
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
