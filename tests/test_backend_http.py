"""The generic HttpBackend: parameter names in, a request template out."""

import base64

import pytest
from asgiref.sync import async_to_sync

import smsrouter
from smsrouter import checks
from smsrouter.backends import backends
from smsrouter.backends.base import SENT, Outcome
from smsrouter.backends.http import fill
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)

ENGINE = "smsrouter.backends.http.HttpBackend"


@pytest.fixture
def acme(settings, gateway):
    settings.INSTALLED_BACKENDS = {"acme": {
        "ENGINE": ENGINE, "inbound_method": "GET", "identity_param": "from", "text_param": "msg",
        "external_id_param": "ref", "token": "t0k",
        "outbound_url": f"{gateway.url}/v1/sms",
        "outbound_json": {"to": "{identity}", "body": "{text}", "ref": "{id}", "flash": False},
        "outbound_headers": {"Authorization": "Bearer abc"}}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    return gateway


def test_inbound_by_named_params_and_a_json_reply(client, acme):
    response = client.get("/backend/acme/", {"from": "+2348030000001", "msg": "echo hi",
                                            "ref": "a1", "token": "t0k"})
    assert response.status_code == 200
    (sent,) = acme.requests
    reply = Message.objects.get(direction="out")
    assert (sent.method, sent.path, sent.headers["Authorization"]) == ("POST", "/v1/sms", "Bearer abc")
    assert sent.json() == {"to": "+2348030000001", "body": "hi", "ref": reply.pk, "flash": False}
    assert Message.objects.get(direction="in").external_id == "a1"


def test_a_form_template_and_a_url_placeholder(settings, gateway):
    settings.INSTALLED_BACKENDS = {"sms": {
        "ENGINE": ENGINE, "outbound_url": f"{gateway.url}/send/{{identity}}",
        "outbound_params": {"message": "{text}", "sender": "CLINIC"},
        "outbound_auth": ["user", "pass"]}}
    smsrouter.send("Karibu {name} & 100%", "+255 700", backend="sms")
    (sent,) = gateway.requests
    assert sent.path == "/send/%2B255%20700"
    assert sent.form() == {"message": "Karibu {name} & 100%", "sender": "CLINIC"}
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()


def test_a_get_template_sends_a_query_string(settings, gateway):
    settings.INSTALLED_BACKENDS = {"sms": {
        "ENGINE": ENGINE, "outbound_method": "get", "outbound_url": f"{gateway.url}/send",
        "outbound_params": {"to": "{identity}", "text": "{text}"}}}
    smsrouter.send("ሰላም", "+251911000000", backend="sms")
    (sent,) = gateway.requests
    assert (sent.method, sent.param("to"), sent.param("text")) == ("GET", "+251911000000", "ሰላም")


def test_send_gives_each_message_its_outcome(settings, gateway):
    """No id from a template's answer; a 5xx is temporary, another 4xx final."""
    settings.INSTALLED_BACKENDS = {"sms": {
        "ENGINE": ENGINE, "outbound_url": f"{gateway.url}/send", "concurrency": 1,
        "outbound_params": {"to": "{identity}", "text": "{text}", "ref": "{id}"}}}
    gateway.answer(200, "queued")
    gateway.answer(503, "busy")
    gateway.answer(404, "no such number")
    row = Backend(name="sms")
    messages = [OutgoingMessage("hi", Connection(backend=row, identity=to), record=Message(pk=pk))
                for pk, to in [(7, "+1"), (8, "+2"), (9, "+3")]]
    assert async_to_sync(backends["sms"].send)(messages) == [
        SENT,
        Outcome(error=f"POST {gateway.url}/send answered 503: busy", temporary=True),
        Outcome(error=f"POST {gateway.url}/send answered 404: no such number")]
    assert [r.form() for r in gateway.requests] == [
        {"to": to, "text": "hi", "ref": ref} for to, ref in [("+1", "7"), ("+2", "8"), ("+3", "9")]]


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({"msg": "hi", "token": "t0k"}, 400, "from is required"),
        ({"from": "+1", "token": "t0k"}, 400, "msg is required (it may be empty)"),
        ({"from": "+1", "msg": "hi"}, 403, "token is missing or wrong"),
    ],
)
def test_bad_inbound_is_refused_and_nothing_written(client, acme, query, status, error):
    response = client.get("/backend/acme/", query)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert not Message.objects.exists()


@pytest.fixture
def posted(settings, gateway):
    """An API that posts its form to us, with an id of its own for each message."""
    settings.INSTALLED_BACKENDS = {"posted": {
        "ENGINE": ENGINE, "identity_param": "from", "text_param": "msg",
        "external_id_param": "ref",
        "outbound_url": f"{gateway.url}/v1/sms?to={{identity}}&t={{text}}"}}
    settings.SMSROUTER_APPS = []
    return gateway


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("body", "content_type", "error"), [
    (b"from=1&msg=hi", "multipart/form-data",
     "body cannot be read as a form (MultiPartParserError: Invalid boundary in multipart: None)"),
    (b"from=1&msg=hi", f"{FORM}; charset=latin-1",
     "body cannot be read as a form (BadRequest: HTTP requests with the "
     "'application/x-www-form-urlencoded' content type must be UTF-8 encoded.)"),
    (b"from=1&msg=hi&" + b"x=1&" * 1000, FORM,
     "body cannot be read as a form (TooManyFieldsSent: The number of GET/POST parameters "
     "exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.)"),
    (b"from=" + b"1" * 101 + b"&msg=hi", FORM,
     "identity is 101 characters long; at most 100 can be stored (Connection.identity)"),
    (b"from=1&msg=hi&ref=" + b"r" * 256, FORM,
     "external_id is 256 characters long; at most 255 can be stored (Message.external_id)"),
    (b"from=%2B1%00&msg=hi", FORM,
     "identity contains NUL (U+0000) at position 2, which no database can store"),
])
def test_a_body_django_cannot_read_or_no_database_can_store_is_400(
        client, posted, body, content_type, error):
    response = client.post("/backend/posted/", body, content_type=content_type)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists() and not Connection.objects.exists()


def test_a_text_with_nul_is_stored_and_the_original_kept(client, posted):
    response = client.post("/backend/posted/", b"from=%2B1&msg=a%00b&ref=r1", content_type=FORM)
    assert response.status_code == 200
    stored = Message.objects.get(direction="in")
    assert (stored.text, stored.external_id, stored.fields) == (
        "a\ufffdb", "r1", {"original_text": ["a", 0, "b"]})


def test_the_configured_method_only(client, acme):
    assert client.post("/backend/acme/?token=t0k", {"from": "+1", "msg": "hi"}).status_code == 405


def test_fill_keeps_types_and_leaves_other_braces():
    values = {"identity": "+1", "text": "{x}", "id": 7}
    assert fill({"a": "{id}", "b": "id={id}", "c": ["{text}"], "d": 3, "e": "{other}"}, values) == {
        "a": 7, "b": "id=7", "c": ["{x}"], "d": 3, "e": "{other}"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ["smsrouter.E005"]),
        ({"outbound_url": "ftp://x/{identity}/{text}"}, ["smsrouter.E063"]),
        ({"outbound_url": "https://x/", "outbound_params": {"to": "{identity}"}}, ["smsrouter.E064"]),
        ({"outbound_url": "https://x/", "outbound_params": {"to": "{identity}", "t": "{text}"},
          "outbound_json": {}}, ["smsrouter.E062"]),
        ({"outbound_url": "https://x/{identity}/{text}", "inbound_method": "PATCH"}, ["smsrouter.E060"]),
        ({"outbound_url": "https://x/{identity}/{text}", "outbound_method": "DELETE"}, ["smsrouter.E061"]),
        ({"outbound_url": "https://x/{identity}/{text}", "identity_parm": "from"}, ["smsrouter.E008"]),
        ({"outbound_url": "https://x/{identity}/{text}"}, []),
    ],
)
def test_checks(settings, config, expected):
    settings.INSTALLED_BACKENDS = {"sms": {"ENGINE": ENGINE, **config}}
    assert [e.id for e in checks.check_backends()] == expected
