"""/backend/<backend_name>/: every backend's webhook, parsed by the backend itself.

Through Django's handler (the test client): the view makes the same early refusals as the
fast path (tests/test_webhooks.py), and the same 413.
"""

import pytest

from smsrouter.backends import backends as installed
from smsrouter.exceptions import BadSignature
from smsrouter.models import Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def backends(settings):
    settings.INSTALLED_BACKENDS = {
        "form": {"ENGINE": "tests.backends.FormBackend"},
        "tester": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "outbound-only": {"ENGINE": "tests.backends.RecordingBackend"},
        "kannel": {"ENGINE": "smsrouter.backends.kannel.KannelBackend", "token": "s3cret"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]


def test_a_backend_parses_its_own_request_and_the_message_is_routed(client):
    response = client.post("/backend/form/", {"identity": "+1", "text": "echo hi"})
    assert (response.status_code, response.content) == (200, b"OK")
    assert list(Message.objects.order_by("pk").values_list("direction", "text", "status")) == [
        ("in", "echo hi", "handled"), ("out", "hi", "sent")]


def test_an_unknown_backend_is_404_naming_the_known_ones_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.post("/backend/nope/", {"identity": "+1", "text": "hi"})
    assert response.status_code == 404
    assert response.json() == {
        "error": "No backend named 'nope' in INSTALLED_BACKENDS (form, kannel, outbound-only, tester)."}
    assert not Message.objects.exists()


@pytest.mark.parametrize("path", ["/backend/nope/", "/backend/nope/status/"])
def test_with_debug_off_the_404_names_no_configured_backend(client, settings, path):
    settings.DEBUG = False
    response = client.post(path, {"identity": "+1", "text": "hi"})
    assert (response.status_code, response.json()) == (404, {"error": "No backend named 'nope'."})


def test_a_method_the_backend_does_not_take_is_405(client):
    response = client.get("/backend/form/", {"identity": "+1", "text": "hi"})
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
    response = client.post("/backend/form/", data)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists()


def test_no_csrf_token_is_needed(settings):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/backend/form/", {"identity": "+1", "text": ""})
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["", "?token=guess", "?token=s3cret&token=guess"])
def test_a_token_missing_from_the_url_is_403_before_the_body_is_judged(client, query):
    """A body that would be a 400 (no id, no text) is never parsed."""
    response = client.post(f"/backend/kannel/{query}", b"not a message",
                           content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()) == (403, {"error": "token is missing or wrong"})
    assert not Message.objects.exists()


def test_the_token_is_checked_by_the_backends_check_request(rf):
    """One early hook, for the inbound URL and the reports' alike."""
    kannel = installed["kannel"]
    for webhook in ("inbound", "status"):
        kannel.check_request(rf.get("/", {"token": "s3cret"}), webhook)
        with pytest.raises(BadSignature, match="token is missing or wrong"):
            kannel.check_request(rf.get("/", {"token": "S3CRET"}), webhook)


@pytest.mark.parametrize(("limit", "size", "over"), [
    (100, 100, "DATA_UPLOAD_MAX_MEMORY_SIZE (100 bytes)"),
    (None, 2621440, "2621440 bytes, the webhooks' limit while DATA_UPLOAD_MAX_MEMORY_SIZE is None"),
])
def test_a_body_over_the_limit_is_413_naming_it(client, settings, limit, size, over):
    """A text of `size` characters, with its field names, passes the limit."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = limit
    response = client.post("/backend/form/", {"identity": "+1", "text": "x" * size})
    assert response.status_code == 413
    assert response.json()["error"].startswith(f"The request body is over {over}: Content-Length says")
    assert not Message.objects.exists()


def test_a_query_of_too_many_fields_is_400_json(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post("/backend/kannel/?" + "&".join(f"f{n}=1" for n in range(11)),
                           {"id": "+1", "text": "hi"})
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["error"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("debug, setting, address, served", [
    (True, None, "127.0.0.1", True),
    (True, None, "::1", True),
    (True, None, "10.0.0.7", False),  # DEBUG on, but another machine
    (False, None, "127.0.0.1", False),  # the tester follows DEBUG: off
    (False, True, "127.0.0.1", False),  # on for staff, who post through its page
    (True, False, "127.0.0.1", False),  # turned off
])
def test_an_httptester_backend_takes_posts_only_from_this_machine_with_debug_on(
        client, settings, debug, setting, address, served):
    settings.DEBUG, settings.SMSROUTER_HTTPTESTER = debug, setting
    response = client.post("/backend/tester/", {"identity": "+1", "text": "echo hi"},
                           REMOTE_ADDR=address)
    if served:
        assert (response.status_code, response.content) == (200, b"OK")
        assert Message.objects.filter(direction="in", text="echo hi").count() == 1
    else:
        assert response.status_code == 403
        assert "takes posts only with DEBUG on, from this machine" in response.json()["error"]
        assert not Message.objects.exists()
