"""VumiBackend against a local stand-in for Vumi's HTTP API."""

import base64
import json

import pytest
from asgiref.sync import async_to_sync

import smsrouter
from smsrouter import checks
from smsrouter.backends import backends
from smsrouter.backends.base import SENT, Outcome
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Backend, Connection, Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)

VUMI = "smsrouter.backends.vumi.VumiBackend"


@pytest.fixture
def vumi(settings, gateway):
    settings.INSTALLED_BACKENDS = {"vumi": {
        "ENGINE": VUMI, "sendsms_url": f"{gateway.url}/api/v1/go/http_api_nostream/conv/messages.json",
        "sendsms_user": "account", "sendsms_pass": "access-token", "token": "s3cret"}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    gateway.answer(200, json.dumps({"message_id": "vumi-out-1"}), times=1)
    return gateway


def post(client, path="/backend/vumi/?token=s3cret", **payload):
    return client.post(path, json.dumps(payload), content_type="application/json")


def inbound(**extra):
    return {"message_id": "vumi-in-1", "from_addr": "+27820000001", "to_addr": "1234",
            "content": "echo hello", "transport_name": "sms", "transport_type": "sms",
            "session_event": None, **extra}


def test_an_inbound_message_is_routed_and_the_reply_posted_as_json(client, vumi):
    response = post(client, **inbound())
    assert (response.status_code, response.content) == (200, b"")
    (sent,) = vumi.requests
    assert sent.method == "POST" and sent.path.endswith("/messages.json")
    reply = Message.objects.get(direction="out")
    assert sent.json() == {"content": "hello", "to_addr": "+27820000001", "session_event": None,
                           "in_reply_to": "vumi-in-1", "metadata": {"smsrouter_id": reply.pk}}
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"account:access-token").decode()
    assert (reply.status, reply.external_id) == ("sent", "vumi-out-1")
    stored = Message.objects.get(direction="in")
    assert (stored.external_id, stored.fields) == ("vumi-in-1", {"vumi": {
        "to_addr": "1234", "transport_name": "sms", "transport_type": "sms"}})


@pytest.mark.parametrize("content", [None, "absent"])
def test_null_or_absent_content_is_an_empty_sms(client, vumi, content):
    payload = inbound(content=content)
    if content == "absent":
        del payload["content"]
    assert post(client, **payload).status_code == 200
    assert Message.objects.get(direction="in").text == ""


def test_a_retried_message_is_routed_once(client, vumi):
    post(client, **inbound())
    post(client, **inbound())
    assert Message.objects.filter(direction="in").count() == 1
    assert len(vumi.requests) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("{not json", 400, "body is not valid JSON"),
        ("[1, 2]", 400, "body must be a JSON object"),
        (json.dumps({"content": "hi"}), 400, "from_addr is required"),
        (json.dumps({"from_addr": "+1", "content": 5}), 400, "content must be a string or null"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_nothing_is_written(client, vumi, body, status, error):
    response = client.post("/backend/vumi/?token=s3cret", body, content_type="application/json")
    assert response.status_code == status and response.json()["error"].startswith(error)
    assert not Message.objects.exists()


FROM = '{"from_addr": "+27820000001", '


@pytest.mark.parametrize(("body", "error"), [
    ("[" * 100_000 + "]" * 100_000, "body is JSON nested too deeply to read"),  # RecursionError
    (FROM + '"to_addr": NaN}', "to_addr must be a string or null, not a number"),
    (FROM + '"to_addr": 1e999}', "to_addr must be a string or null, not a number"),
    (FROM + '"session_event": ["new"]}', "session_event must be a string or null, not an array"),
    (FROM + '"content": "x", "y": ' + "9" * 5000 + "}",
     "body has an integer of 5000 digits; send long numbers as strings"),
    (FROM + '"message_id": {"id": 1}}', "message_id must be a string, not an object"),
    (FROM + '"message_id": true}', "message_id must be a string, not a boolean"),
    (FROM + '"message_id": 1.5}', "message_id must be a string, not a number"),
    (FROM + '"message_id": "' + "m" * 256 + '"}',
     "external_id is 256 characters long; at most 255 can be stored (Message.external_id)"),
    ('{"from_addr": "+1\\u0000"}',
     "identity contains NUL (U+0000) at position 2, which no database can store"),
    ('{"from_addr": "+1\\ud800"}',
     "identity contains a lone surrogate (U+D800) at position 2, which no database can store"),
    (FROM + '"to_addr": "12\\u0000"}',
     "fields['vumi']['to_addr'] contains NUL (U+0000) at position 2, which no database can store"),
    ('"a string"', "body must be a JSON object, not a string"),
    ("null", "body must be a JSON object, not null"),
    ("5", "body must be a JSON object, not a number"),
    ("\xff\xfe{", "body is not valid JSON"),
])
def test_hostile_json_is_400_naming_the_field_and_nothing_is_written(client, vumi, body, error):
    response = client.post("/backend/vumi/?token=s3cret", body.encode("latin-1"),
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert not Message.objects.exists() and not Connection.objects.exists()


@pytest.mark.parametrize("extra", ['"metadata": NaN', '"metadata": -Infinity', '"x": 1e999'])
def test_nan_or_infinity_where_no_field_is_read_harms_nothing(client, vumi, extra):
    body = FROM + '"content": "hi", ' + extra + "}"
    response = client.post("/backend/vumi/?token=s3cret", body, content_type="application/json")
    assert response.status_code == 200
    assert Message.objects.get(direction="in").fields == {}


def test_a_lone_surrogate_in_the_content_is_stored_and_the_original_kept(client, vumi):
    body = FROM + '"content": "hi \\ud83d", "message_id": 42}'
    response = client.post("/backend/vumi/?token=s3cret", body, content_type="application/json")
    assert response.status_code == 200
    stored = Message.objects.get(direction="in")
    assert (stored.text, stored.external_id) == ("hi \ufffd", "42")
    assert stored.fields == {"original_text": ["hi ", 0xD83D]}


@pytest.mark.parametrize(("event", "error"), [
    ({"event_type": ["ack"], "user_message_id": "vumi-out-1"}, "event_type must be"),
    ({"event_type": "delivery_report", "delivery_status": {"a": 1},
      "user_message_id": "vumi-out-1"}, "delivery_status must be"),
    ({"event_type": "ack", "user_message_id": ["vumi-out-1"]},
     "user_message_id must be a string, not an array"),
    ({"event_type": "ack", "user_message_id": "vumi\u0000"},
     "user_message_id contains NUL (U+0000) at position 4"),
])
def test_events_of_the_wrong_types_are_400(client, vumi, event, error):
    """Unhashable values once raised TypeError from the lookups: a 500."""
    (message,) = smsrouter.send("hi", "+27820000001", backend="vumi")
    response = post(client, "/backend/vumi/status/?token=s3cret", **event)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert Message.objects.get(pk=message.id).status == "sent"


def test_a_nack_reason_with_nul_is_stored_scrubbed(client, vumi):
    (message,) = smsrouter.send("hi", "+27820000001", backend="vumi")
    response = post(client, "/backend/vumi/status/?token=s3cret", event_type="nack",
                    user_message_id="vumi-out-1", nack_reason="no\u0000route")
    assert response.status_code == 200
    assert Message.objects.values_list("status", "error").get(pk=message.id) == (
        "failed", "nack: no\ufffdroute")


@pytest.mark.parametrize("path", ["/backend/vumi/", "/backend/vumi/?token=wrong"])
def test_a_missing_or_wrong_token_is_403_and_nothing_is_written(client, vumi, path):
    response = post(client, path, **inbound())
    assert (response.status_code, response.json()) == (403, {"error": "token is missing or wrong"})
    assert not Message.objects.exists()


def test_send_failures_are_kept_per_message(vumi):
    vumi.reset()
    vumi.answer(400, '{"error": "bad to_addr"}')
    vumi.answer(200, '{"message_id": "ok-2"}')
    sent = smsrouter.send("hi", ["bad", "+27820000002"], backend="vumi")
    assert sorted((m.status, m.external_id) for m in sent) == [("failed", None), ("sent", "ok-2")]
    failed = next(m for m in sent if m.status == "failed")
    assert "answered 400" in failed.error and "bad to_addr" in failed.error


def test_send_gives_each_message_its_outcome(settings, vumi):
    """Vumi's message_id when it gives one; a refusal for good; a 5xx as temporary."""
    config = settings.INSTALLED_BACKENDS["vumi"]
    settings.INSTALLED_BACKENDS = {"vumi": {**config, "concurrency": 1}}  # answers in order
    vumi.answer(400, '{"error": "bad to_addr"}')
    vumi.answer(503, "busy")
    vumi.answer(200, "not JSON")
    row = Backend(name="vumi")
    phone = Connection(backend=row, identity="+27820000001")
    question = IncomingMessage(Message(text="echo hello", external_id="vumi-in-1"), phone)
    messages = [OutgoingMessage("hello", phone, in_response_to=question, record=Message(pk=41)),
                *(OutgoingMessage("hi", Connection(backend=row, identity=to))
                  for to in ["bad", "+27820000002", "+27820000003"])]
    where = f"POST {config['sendsms_url']}"
    assert async_to_sync(backends["vumi"].send)(messages) == [
        Outcome(external_id="vumi-out-1"),
        Outcome(error=f'{where} answered 400: {{"error": "bad to_addr"}}'),
        Outcome(error=f"{where} answered 503: busy", temporary=True),
        SENT]
    assert vumi.requests[0].json() == {
        "content": "hello", "to_addr": "+27820000001", "session_event": None,
        "in_reply_to": "vumi-in-1", "metadata": {"smsrouter_id": 41}}


@pytest.mark.parametrize(
    ("event", "status", "error"),
    [
        ({"event_type": "ack"}, "sent", ""),
        ({"event_type": "nack", "nack_reason": "no route"}, "failed", "nack: no route"),
        ({"event_type": "delivery_report", "delivery_status": "delivered"}, "delivered", ""),
        ({"event_type": "delivery_report", "delivery_status": "failed"}, "failed", "delivery failed"),
        ({"event_type": "delivery_report", "delivery_status": "pending"}, "sent", ""),
    ],
)
def test_events_set_the_status(client, vumi, event, status, error):
    (message,) = smsrouter.send("hi", "+27820000001", backend="vumi")
    Message.objects.filter(pk=message.id).update(status="queued")
    response = post(client, "/backend/vumi/status/?token=s3cret", message_type="event",
                    user_message_id="vumi-out-1", **event)
    assert (response.status_code, response.content) == (200, b"")
    assert Message.objects.values_list("status", "error").get(pk=message.id) == (status, error)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"event_type": "bounce", "user_message_id": "vumi-out-1"}, "event_type must be"),
        ({"event_type": "delivery_report", "delivery_status": "x", "user_message_id": "vumi-out-1"},
         "delivery_status must be"),
        ({"event_type": "ack"}, "user_message_id is required"),
        ({"event_type": "ack", "user_message_id": "unknown"}, "user_message_id does not match"),
    ],
)
def test_bad_events_are_400_and_change_nothing(client, vumi, event, error):
    (message,) = smsrouter.send("hi", "+27820000001", backend="vumi")
    response = post(client, "/backend/vumi/status/?token=s3cret", **event)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert Message.objects.get(pk=message.id).status == "sent"


def test_sendsms_url_is_required(settings):
    settings.INSTALLED_BACKENDS = {"vumi": {"ENGINE": VUMI}}
    assert [e.id for e in checks.check_backends()] == ["smsrouter.E005"]
