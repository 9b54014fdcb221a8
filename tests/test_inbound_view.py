"""/backend/<backend_name>/: every backend's webhook, parsed by the backend itself."""

import pytest

from smsrouter.models import Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def backends(settings):
    settings.INSTALLED_BACKENDS = {
        "tester": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "outbound-only": {"ENGINE": "tests.backends.RecordingBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]


def test_a_backend_parses_its_own_request_and_the_message_is_routed(client):
    response = client.post("/backend/tester/", {"identity": "+1", "text": "echo hi"})
    assert (response.status_code, response.content) == (200, b"OK")
    assert list(Message.objects.order_by("pk").values_list("direction", "text", "status")) == [
        ("in", "echo hi", "handled"), ("out", "hi", "sent")]


def test_an_unknown_backend_is_404_naming_the_known_ones(client):
    response = client.post("/backend/nope/", {"identity": "+1", "text": "hi"})
    assert response.status_code == 404
    assert response.json() == {
        "error": "No backend named 'nope' in INSTALLED_BACKENDS (outbound-only, tester)."}
    assert not Message.objects.exists()


def test_a_method_the_backend_does_not_take_is_405(client):
    response = client.get("/backend/tester/", {"identity": "+1", "text": "hi"})
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert client.post("/backend/outbound-only/", {"identity": "+1"}).status_code == 405
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"text": "hi"}, "identity is required"),
        ({"identity": "  ", "text": "hi"}, "identity is required"),
        ({"identity": "+1"}, "text is required (it may be empty)"),
    ],
)
def test_a_missing_field_is_400_naming_it_and_nothing_is_written(client, data, error):
    response = client.post("/backend/tester/", data)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists()


def test_no_csrf_token_is_needed(settings):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/backend/tester/", {"identity": "+1", "text": ""})
    assert response.status_code == 200
