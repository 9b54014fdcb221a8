"""TwilioBackend: signed webhooks in, the REST API out, status callbacks back.

Signatures are proved against Twilio's own library (twilio.request_validator), which also
signs every request the tests post. Sends go over real HTTP to the `gateway` stand-in.
"""

import asyncio
import base64
import json
import socket
from urllib.parse import urlencode

import pytest
from django.core.checks import WARNING
from django.http import QueryDict
from django.test import RequestFactory
from twilio.request_validator import RequestValidator

import smsrouter
from smsrouter import checks, deploychecks, httpclient
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome, StatusReport
from smsrouter.backends.twilio import TwilioBackend, signature
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message

ENGINE = "smsrouter.backends.twilio.TwilioBackend"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "f" * 16 + "0" * 16
SERVICE = "MG" + "fedcba9876543210" * 2
FROM = "+15005550006"
WEBHOOK = "/backend/twilio/"
STATUS = "/backend/twilio/status/"
BASIC = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
INBOUND = {
    "MessageSid": "SM" + "1" * 32,
    "AccountSid": SID,
    "From": "+255700000001",
    "To": FROM,
    "Body": "echo hi",
    "NumMedia": "0",
    "NumSegments": "1",
}
INVALID_TO = {"code": 21211, "message": "The 'To' number +1 is not a valid phone number.",
              "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}


@pytest.fixture
def config(settings, gateway):
    """One Twilio backend whose API is the `gateway`; the echo app answers."""
    settings.INSTALLED_BACKENDS = {"twilio": {
        "ENGINE": ENGINE, "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
        "api_url": gateway.url, "public_url": "http://testserver",
    }}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings.INSTALLED_BACKENDS["twilio"]


def accepts(gateway, *sids):
    """Twilio creates one message per sid, in order: 201 and the message resource."""
    for sid in sids:
        gateway.answer(201, json.dumps({"sid": sid, "status": "queued"}),
                       headers={"Content-Type": "application/json"})


def signed_post(client, path, data, *, url=None, token=TOKEN):
    """POST as Twilio does: the signature over `url` (what Twilio called) and the form."""
    sig = RequestValidator(token).compute_signature(url or f"http://testserver{path}", data)
    return client.post(path, data, headers={"X-Twilio-Signature": sig})


# The signature, as Twilio's library computes it.
HOOK = "https://example.com/backend/twilio/"


def test_the_example_of_twilios_security_docs():
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310", "Digits": "1234",
              "From": "+14158675310", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


@pytest.mark.parametrize(
    ("url", "pairs"),
    [
        (HOOK, list(INBOUND.items())),
        (HOOK, [("Body", "Habari ya asubuhi ☀️ ሰላም"), ("From", "+255700000001")]),
        (HOOK, [("Body", "a=b&c d%20+"), ("From", "whatsapp:+1")]),
        (HOOK, [("MediaUrl", "b"), ("MediaUrl", "a"), ("MediaUrl", "b")]),
        (HOOK, [("body", "lower"), ("Body", "upper"), ("To", "")]),
        (HOOK + "?tenant=7&lang=sw", list(INBOUND.items())),
        ("http://example.com:8080/sms/backend/twilio/", list(INBOUND.items())),
        (HOOK, []),
    ],
    ids=["inbound", "unicode", "escapes", "repeated", "case", "query", "port", "no-params"],
)
def test_signature_matches_twilios_library(url, pairs):
    params = QueryDict(urlencode(pairs), mutable=True)
    expected = RequestValidator(TOKEN).compute_signature(url, params)
    assert signature(TOKEN, url, dict(params.lists())) == expected


# Inbound messages.
@pytest.mark.django_db
def test_a_signed_sms_is_answered_with_empty_twiml_and_the_reply_goes_out_by_the_api(
    client, config, gateway, django_capture_on_commit_callbacks
):
    accepts(gateway, "SMreply")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(client, WEBHOOK, INBOUND)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    incoming = Message.objects.get(direction="in")
    assert (incoming.text, incoming.connection.identity, incoming.external_id, incoming.status) == (
        "echo hi", "+255700000001", INBOUND["MessageSid"], "handled")
    assert incoming.fields == {"to": FROM, "twilio": {"num_media": 0}}
    (seen,) = gateway.requests
    assert (seen.method, seen.path, seen.headers["Authorization"]) == ("POST", MESSAGES_PATH, BASIC)
    assert seen.form() == {"To": "+255700000001", "From": FROM, "Body": "hi",
                           "StatusCallback": "http://testserver/backend/twilio/status/"}
    reply = Message.objects.get(direction="out")
    assert (reply.status, reply.external_id, reply.in_response_to_id) == (
        "sent", "SMreply", incoming.id)


@pytest.mark.django_db
def test_the_media_of_an_mms_are_kept_in_fields(client, config):
    media = {"NumMedia": "2",
             "MediaUrl0": "https://api.twilio.com/m/0", "MediaContentType0": "image/jpeg",
             "MediaUrl1": "https://api.twilio.com/m/1", "MediaContentType1": "audio/amr"}
    assert signed_post(client, WEBHOOK, {**INBOUND, "Body": "", **media}).status_code == 200
    assert Message.objects.get().fields["twilio"] == {"num_media": 2, "media": [
        {"url": "https://api.twilio.com/m/0", "content_type": "image/jpeg"},
        {"url": "https://api.twilio.com/m/1", "content_type": "audio/amr"}]}


def _without(name):
    return {key: value for key, value in INBOUND.items() if key != name}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_without("From"), "From is required"),
        ({**INBOUND, "From": " "}, "From is required"),
        (_without("Body"), "Body is required (it may be empty)"),
        ({**INBOUND, "NumMedia": "many"},
         "NumMedia must be a whole number from 0 to 10, not 'many'"),
    ],
)
@pytest.mark.django_db
def test_a_signed_request_without_a_field_is_400_naming_it(client, config, gateway, data, error):
    response = signed_post(client, WEBHOOK, data)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert Message.objects.count() == 0 and gateway.requests == []


@pytest.mark.parametrize(("data", "error"), [
    ({**INBOUND, "NumMedia": "²"}, "NumMedia must be a whole number from 0 to 10, not '²'"),
    ({**INBOUND, "NumMedia": "٣"}, "NumMedia must be a whole number from 0 to 10, not '٣'"),
    ({**INBOUND, "NumMedia": "99999999999"},  # once a list of that many media
     "NumMedia must be a whole number from 0 to 10, not '99999999999'"),
    ({**INBOUND, "MessageSid": "SM" + "1" * 254},
     "external_id is 256 characters long; at most 255 can be stored (Message.external_id)"),
    ({**INBOUND, "From": "+1" * 51},
     "identity is 102 characters long; at most 100 can be stored (Connection.identity)"),
    ({**INBOUND, "To": "+1\x00"},
     "fields['to'] contains NUL (U+0000) at position 2, which no database can store"),
])
@pytest.mark.django_db
def test_a_signed_request_with_a_value_no_database_can_store_is_400(client, config, data, error):
    response = signed_post(client, WEBHOOK, data)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists() and not Connection.objects.exists()


@pytest.mark.django_db
def test_a_signed_body_with_nul_is_stored_and_the_original_kept(client, config):
    assert signed_post(client, WEBHOOK, {**INBOUND, "Body": "a\x00b"}).status_code == 200
    stored = Message.objects.get(direction="in")
    assert (stored.text, stored.fields["original_text"]) == ("a\ufffdb", ["a", 0, "b"])


@pytest.mark.parametrize(("body", "content_type"), [
    (b"From=%2B1&Body=hi", "multipart/form-data"),  # no boundary
    (b"From=%2B1&Body=hi", "application/x-www-form-urlencoded; charset=latin-1"),
])
@pytest.mark.django_db
def test_a_form_django_cannot_read_is_400_before_the_signature(client, config, body, content_type):
    """The signature is over the form's fields, so a form that cannot be read is refused
    as such; nothing is written either way."""
    response = client.post(WEBHOOK, body, content_type=content_type,
                           headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("body cannot be read as a form")
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_status_callback_with_nul_in_its_error_code_is_recorded_scrubbed(client, config, gateway):
    accepts(gateway, INBOUND["MessageSid"])
    [sent] = smsrouter.send("hi", "+255700000001", backend="twilio")
    Message.objects.filter(pk=sent.id).update(external_id=INBOUND["MessageSid"], status="sent")
    response = signed_post(client, STATUS, {"MessageSid": INBOUND["MessageSid"],
                                            "MessageStatus": "failed", "ErrorCode": "300\x0005"})
    assert response.status_code == 204
    assert Message.objects.values_list("status", "error").get(pk=sent.id) == (
        "failed", "Twilio error 300\ufffd05 (failed)")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": RequestValidator("0" * 32).compute_signature(
            "http://testserver/backend/twilio/", INBOUND)},
        {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(
            "http://testserver/backend/twilio/", {**INBOUND, "Body": "echo something else"})},
        {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(
            "http://testserver/backend/other/", INBOUND)},
        {"X-Twilio-Signature": "ሰላም"},
    ],
    ids=["missing", "empty", "other-token", "other-body", "other-url", "not-ascii"],
)
@pytest.mark.django_db
def test_a_bad_or_missing_signature_is_403_and_nothing_is_written(client, config, gateway, headers):
    response = client.post(WEBHOOK, INBOUND, headers=headers)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json()["error"]
    assert TOKEN not in response.content.decode()
    assert Message.objects.count() == 0 and gateway.requests == []


@pytest.mark.django_db
def test_the_signature_is_checked_before_any_field(client, config):
    """An unsigned request learns nothing about which fields are required."""
    response = client.post(WEBHOOK, {"Body": "no From"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_validate_signature_false_takes_unsigned_requests(client, config, settings):
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "validate_signature": False}}
    assert client.post(WEBHOOK, {**INBOUND, "Body": "hi"}).status_code == 200
    assert Message.objects.get().text == "hi"


@pytest.mark.django_db
def test_a_retried_message_sid_is_routed_once(
    client, config, gateway, django_capture_on_commit_callbacks
):
    """Twilio retries a webhook it saw no answer to: the retry is answered, not routed."""
    accepts(gateway, "SMreply")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert signed_post(client, WEBHOOK, INBOUND).status_code == 200
    assert Message.objects.filter(direction="in").count() == 1
    assert len(gateway.requests) == 1


@pytest.mark.django_db
def test_behind_a_proxy_the_signature_is_over_the_public_url(client, config, settings):
    """Django sees testserver; Twilio called, and signed, the public URL."""
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "public_url": "https://sms.example.com/"}}
    seen_by_django = signed_post(client, WEBHOOK, INBOUND)
    assert seen_by_django.status_code == 403
    assert "a POST to https://sms.example.com/backend/twilio/;" in seen_by_django.json()["error"]
    public = signed_post(client, WEBHOOK, INBOUND, url="https://sms.example.com/backend/twilio/")
    assert public.status_code == 200


@pytest.mark.django_db
def test_a_path_prefix_that_the_proxy_strips_belongs_in_public_url(client, config, settings):
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "public_url": "https://example.com/sms"}}
    url = "https://example.com/sms/backend/twilio/"
    assert signed_post(client, WEBHOOK, INBOUND, url=url).status_code == 200


@pytest.mark.parametrize(
    "signed_as",
    ["https://sms.example.com:443/backend/twilio/", "https://sms.example.com/backend/twilio/"],
)
@pytest.mark.django_db
def test_twilio_may_sign_with_or_without_the_default_port(client, config, settings, signed_as):
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "public_url": "https://sms.example.com"}}
    assert signed_post(client, WEBHOOK, INBOUND, url=signed_as).status_code == 200


@pytest.mark.django_db
def test_the_query_string_is_part_of_the_signed_url(client, config):
    path = WEBHOOK + "?tenant=7&lang=sw"
    assert signed_post(client, path, INBOUND).status_code == 200
    assert signed_post(client, path, INBOUND, url="http://testserver" + WEBHOOK).status_code == 403


@pytest.mark.django_db
def test_without_public_url_the_url_django_sees_is_signed_and_no_callback_is_asked(
    client, config, settings, gateway, django_capture_on_commit_callbacks
):
    settings.INSTALLED_BACKENDS = {"twilio": {k: v for k, v in config.items() if k != "public_url"}}
    accepts(gateway, "SMreply")
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, WEBHOOK, INBOUND).status_code == 200
    assert "StatusCallback" not in gateway.requests[0].form()


def test_get_is_405(client, config):
    assert client.get(WEBHOOK).status_code == 405


# Outbound messages.
@pytest.mark.django_db
def test_the_message_sid_is_the_external_id(config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, "SM" + "a" * 32)
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("Karibu ☀️", "+255700000001", backend="twilio")
    assert (msg.status, msg.external_id) == ("sent", "SM" + "a" * 32)
    assert Message.objects.get().external_id == "SM" + "a" * 32
    (seen,) = gateway.requests
    assert seen.headers["Authorization"] == BASIC
    assert seen.form() == {"To": "+255700000001", "From": FROM, "Body": "Karibu ☀️",
                           "StatusCallback": "http://testserver/backend/twilio/status/"}


@pytest.mark.django_db
def test_a_messaging_service_sends_instead_of_a_number(
    config, settings, gateway, django_capture_on_commit_callbacks
):
    without_number = {k: v for k, v in config.items() if k != "from_number"}
    settings.INSTALLED_BACKENDS = {"twilio": {**without_number, "messaging_service_sid": SERVICE}}
    accepts(gateway, "SMx")
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hi", "+255700000001", backend="twilio")
    form = gateway.requests[0].form()
    assert form["MessagingServiceSid"] == SERVICE and "From" not in form


@pytest.mark.django_db
def test_a_refused_message_keeps_twilios_code_and_message(
    config, gateway, django_capture_on_commit_callbacks
):
    gateway.answer(400, json.dumps(INVALID_TO), headers={"Content-Type": "application/json"})
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+1", backend="twilio")
    assert msg.status == "failed"
    assert msg.error.endswith("answered 400: Twilio error 21211: The 'To' number +1 is not a "
                              "valid phone number.")
    assert Message.objects.get().error == msg.error


@pytest.mark.django_db
def test_a_refusal_without_twilios_json_keeps_the_answer(
    config, gateway, django_capture_on_commit_callbacks
):
    gateway.answer(404, "Not Found")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="twilio")
    assert msg.status == "failed" and msg.error.endswith(f"{MESSAGES_PATH} answered 404: Not Found")


@pytest.mark.django_db
def test_a_success_without_a_sid_is_not_taken_for_sent(
    config, gateway, django_capture_on_commit_callbacks
):
    """A 200 from something that is not Twilio (a wrong api_url, a portal) proves nothing."""
    gateway.answer(200, "<html>Welcome</html>", headers={"Content-Type": "text/html"})
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="twilio")
    assert msg.status == "failed" and "answered 200 without a message sid" in msg.error


def attempt(msg):
    """What the sender recorded of the message's attempts: (status, attempts, retry due)."""
    row = Message.objects.get(pk=msg.id)
    assert (msg.status, msg.error, msg.external_id) == (row.status, row.error, row.external_id)
    return row.status, row.attempts, row.due_at is not None


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.django_db
def test_a_busy_or_failing_twilio_is_a_temporary_failure(
    config, gateway, status, django_capture_on_commit_callbacks
):
    """Queued again after a backoff, the error kept, until the last attempt fails it."""
    gateway.answer(status, json.dumps({"code": 20429, "message": "Too Many Requests"}), times=2)
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+255700000001", "+255700000002"], backend="twilio")
    assert [attempt(m) for m in messages] == [("queued", 1, True), ("queued", 1, True)]
    assert all(m.error.startswith("POST ") for m in messages)
    assert f"answered {status}: Twilio error 20429: Too Many Requests" in messages[0].error


@pytest.mark.django_db
def test_one_message_failing_does_not_fail_the_others(
    config, gateway, settings, django_capture_on_commit_callbacks
):
    """Sent ones stay sent; the 503 is queued for a retry, the refusal gives Twilio's code."""
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "concurrency": 1}}  # answers in order
    accepts(gateway, "SM1")
    gateway.answer(503, "Service Unavailable")
    gateway.answer(400, json.dumps(INVALID_TO), headers={"Content-Type": "application/json"})
    accepts(gateway, "SM4")
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+1", "+2", "+3", "+4"], backend="twilio")
    assert [(m.status, m.external_id) for m in messages] == [
        ("sent", "SM1"), ("queued", None), ("failed", None), ("sent", "SM4")]
    assert [attempt(m) for m in messages] == [
        ("sent", 1, False), ("queued", 1, True), ("failed", 1, False), ("sent", 1, False)]
    assert messages[1].error.startswith("POST ")
    assert messages[1].error.endswith("answered 503: Service Unavailable")
    assert "Twilio error 21211" in messages[2].error
    assert [m.form()["To"] for m in gateway.requests] == ["+1", "+2", "+3", "+4"]


@pytest.mark.django_db
def test_an_unreachable_api_is_temporary(config, settings, django_capture_on_commit_callbacks):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.INSTALLED_BACKENDS = {"twilio": {**config, "api_url": f"http://127.0.0.1:{port}"}}
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="twilio")
    assert attempt(msg) == ("queued", 1, True)
    where = f"POST http://127.0.0.1:{port}{MESSAGES_PATH}"
    assert msg.error.startswith(f"{where} failed: ClientConnectorError")
    assert TOKEN not in msg.error


@pytest.mark.asyncio
async def test_at_most_concurrency_requests_are_in_flight(monkeypatch):
    """Twilio has no bulk send: 25 messages are 25 requests, 10 at a time."""
    in_flight, most = 0, 0
    bound_reached, release = asyncio.Event(), asyncio.Event()

    async def request(method, url, **kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == TwilioBackend.default_concurrency:
            bound_reached.set()
        await release.wait()
        in_flight -= 1
        return httpclient.Answer(201, json.dumps({"sid": f"SM{kwargs['data']['To']}"}), "POST x")

    monkeypatch.setattr(httpclient, "request", request)
    row = Backend(name="twilio")
    messages = [OutgoingMessage("hi", Connection(backend=row, identity=f"+{i}")) for i in range(25)]
    backend = TwilioBackend("twilio", account_sid=SID, auth_token=TOKEN, from_number=FROM)
    sending = asyncio.create_task(backend.send(messages))
    await bound_reached.wait()  # every request that could start has started: they are held
    release.set()
    outcomes = await sending
    assert most == TwilioBackend.default_concurrency == 10
    assert outcomes == [Outcome(external_id=f"SM+{i}") for i in range(25)]


@pytest.mark.asyncio
async def test_send_gives_each_message_its_own_outcome(monkeypatch):
    """Sent, refused for good, or temporary (unreachable, 429, 5xx): one outcome each."""
    answers = {
        "+1": httpclient.Answer(201, json.dumps({"sid": "SM1"}), "POST x"),
        "+2": httpclient.Answer(503, "Service Unavailable", "POST x"),
        "+3": httpclient.Answer(400, json.dumps(INVALID_TO), "POST x"),
        "+4": httpclient.Answer(429, json.dumps({"code": 20429, "message": "Too Many Requests"}),
                                "POST x"),
        "+5": httpclient.Answer(200, "<html>Welcome</html>", "POST x"),
    }

    async def request(method, url, **kwargs):
        return answers[kwargs["data"]["To"]]

    monkeypatch.setattr(httpclient, "request", request)
    row = Backend(name="twilio")
    messages = [OutgoingMessage("hi", Connection(backend=row, identity=to)) for to in answers]
    backend = TwilioBackend("twilio", account_sid=SID, auth_token=TOKEN, from_number=FROM)
    outcomes = await backend.send(messages)
    assert [(o.sent, o.temporary, o.external_id) for o in outcomes] == [
        (True, False, "SM1"), (False, True, None), (False, False, None), (False, True, None),
        (False, False, None)]
    assert outcomes[1].error == "POST x answered 503: Service Unavailable"
    assert outcomes[2].error == ("POST x answered 400: Twilio error 21211: The 'To' number +1 "
                                 "is not a valid phone number.")
    assert outcomes[3].error == "POST x answered 429: Twilio error 20429: Too Many Requests"
    assert "answered 200 without a message sid" in outcomes[4].error


# Status callbacks.
@pytest.fixture
def sent(config, gateway, django_capture_on_commit_callbacks):
    """A message Twilio took as SMsent, its status reset to "queued" as if just stored."""
    accepts(gateway, "SMsent")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="twilio")
    Message.objects.filter(pk=msg.id).update(status="queued")
    return msg


def stored(msg):
    return Message.objects.filter(pk=msg.id).values_list("status", "error").get()


def report(client, status, sid="SMsent", **extra):
    return signed_post(client, STATUS, {"MessageSid": sid, "MessageStatus": status,
                                        "AccountSid": SID, "To": "+255700000001", **extra})


@pytest.mark.parametrize(
    ("twilio_status", "extra", "status", "error"),
    [
        ("accepted", {}, "queued", ""),
        ("scheduled", {}, "queued", ""),
        ("queued", {}, "queued", ""),
        ("sending", {}, "sending", ""),
        ("sent", {}, "sent", ""),
        ("partially_delivered", {}, "sent", ""),
        ("delivered", {}, "delivered", ""),
        ("read", {}, "delivered", ""),
        ("undelivered", {"ErrorCode": "30003"}, "failed", "Twilio error 30003 (undelivered)"),
        ("failed", {"ErrorCode": "30008"}, "failed", "Twilio error 30008 (failed)"),
        ("canceled", {}, "failed", "Twilio: canceled"),
    ],
)
def test_each_twilio_status_maps_to_ours(config, twilio_status, extra, status, error):
    data = {"MessageSid": "SMsent", "MessageStatus": twilio_status, **extra}
    sig = RequestValidator(TOKEN).compute_signature("http://testserver" + STATUS, data)
    request = RequestFactory().post(STATUS, data, headers={"X-Twilio-Signature": sig})
    assert backends["twilio"].parse_status(request) == [
        StatusReport(status, "MessageSid", external_id="SMsent", error=error)]


@pytest.mark.parametrize(
    ("twilio_status", "extra", "status", "error"),
    [
        ("sending", {}, "sending", ""),
        ("sent", {}, "sent", ""),
        ("delivered", {}, "delivered", ""),
        ("undelivered", {"ErrorCode": "30003"}, "failed", "Twilio error 30003 (undelivered)"),
    ],
)
@pytest.mark.django_db
def test_a_status_callback_moves_the_message(client, sent, twilio_status, extra, status, error):
    response = report(client, twilio_status, **extra)
    assert (response.status_code, response.content) == (204, b"")
    assert stored(sent) == (status, error)


@pytest.mark.django_db
def test_callbacks_out_of_order_never_move_a_message_back(client, sent):
    assert report(client, "delivered").status_code == 204
    assert report(client, "sent").status_code == 204
    assert report(client, "undelivered", ErrorCode="30003").status_code == 204
    assert stored(sent) == ("delivered", "")


@pytest.mark.django_db
def test_a_callback_for_an_unknown_sid_is_400_and_changes_nothing(client, sent):
    response = report(client, "delivered", sid="SMnobody")
    assert (response.status_code, response.json()) == (
        400, {"error": "MessageSid does not match a message sent through 'twilio'"})
    assert Message.objects.get(pk=sent.id).status == "queued"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"MessageSid": "SMsent", "MessageStatus": "received"}, "MessageStatus 'received' is not"),
        ({"MessageSid": "SMsent"}, "MessageStatus '' is not"),
        ({"MessageStatus": "delivered"}, "MessageSid is required"),
    ],
)
@pytest.mark.django_db
def test_a_callback_without_a_known_status_or_sid_is_400_naming_it(client, sent, data, error):
    response = signed_post(client, STATUS, data)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert Message.objects.get(pk=sent.id).status == "queued"


# System checks.
def check(settings, **options):
    settings.INSTALLED_BACKENDS = {"twilio": {"ENGINE": ENGINE, **options}}
    return checks.check_backends()


def ids(errors):
    return [error.id for error in errors]


GOOD = {"account_sid": SID, "auth_token": TOKEN, "from_number": FROM}


@pytest.mark.parametrize("public_url", ["https://sms.example.com", "https://example.com/sms/",
                                        "http://localhost:8000"])
def test_a_complete_configuration_passes(settings, public_url):
    assert check(settings, **GOOD, public_url=public_url, api_url="https://api.twilio.com",
                 validate_signature=True) == []


def test_account_sid_and_auth_token_are_required(settings):
    errors = check(settings, from_number=FROM)
    assert ids(errors) == ["smsrouter.E005", "smsrouter.E005"]
    assert [e.msg for e in errors] == ["Backend 'twilio' needs the option 'account_sid'.",
                                       "Backend 'twilio' needs the option 'auth_token'."]


def test_a_sender_is_required(settings):
    (error,) = check(settings, account_sid=SID, auth_token=TOKEN)
    assert error.id == "smsrouter.E050" and "messaging_service_sid" in error.hint


def test_only_one_sender(settings):
    (error,) = check(settings, **GOOD, messaging_service_sid=SERVICE)
    assert error.id == "smsrouter.E051"
    assert error.msg == "Backend 'twilio' has both from_number and messaging_service_sid."


def test_a_messaging_service_alone_is_a_sender(settings):
    assert check(settings, account_sid=SID, auth_token=TOKEN, messaging_service_sid=SERVICE) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"account_sid": TOKEN}, "smsrouter.E052"),
        ({"account_sid": "SK" + SID[2:]}, "smsrouter.E052"),
        ({"account_sid": "AC" + "x" * 32}, "smsrouter.E052"),
        ({"from_number": "", "messaging_service_sid": "MG123"}, "smsrouter.E053"),
        ({"auth_token": ""}, "smsrouter.E054"),
        ({"public_url": "sms.example.com"}, "smsrouter.E055"),
        ({"public_url": "ftp://sms.example.com"}, "smsrouter.E055"),
        ({"public_url": "https://sms.example.com:https/"}, "smsrouter.E055"),
        ({"public_url": "https://sms.example.com/?x=1"}, "smsrouter.E055"),
        ({"public_url": "https://sms.example.com/backend/twilio/"}, "smsrouter.E055"),
        ({"api_url": "api.twilio.com"}, "smsrouter.E056"),
        ({"validate_signature": "no"}, "smsrouter.E009"),
    ],
)
def test_wrong_values(settings, options, expected):
    assert ids(check(settings, **{**GOOD, **options})) == [expected]


def test_turning_signatures_off_is_a_deploy_warning(settings):
    """Off is for development: only `check --deploy` warns (tests/test_checks.py)."""
    assert check(settings, **GOOD, validate_signature=False) == []
    (warning,) = deploychecks.check_open_webhooks()
    assert (warning.id, warning.level) == ("smsrouter.W050", WARNING)


def test_a_sid_in_the_wrong_place_is_not_echoed_whole(settings):
    """Someone may paste the auth token as account_sid; the error shows its start only."""
    (error,) = check(settings, **{**GOOD, "account_sid": TOKEN})
    assert TOKEN not in error.msg
    assert error.msg == "Backend 'twilio': account_sid starting 'ffff' is not a Twilio sid."


def test_a_webhook_url_as_public_url_says_what_to_write(settings):
    (error,) = check(settings, **GOOD, public_url="https://sms.example.com/backend/twilio/")
    assert "smsrouter adds /backend/<name>/ itself" in error.msg
    assert "'https://sms.example.com'" in error.hint


def test_an_option_typo_suggests_the_option(settings):
    errors = check(settings, account_sid=SID, auth_tokn=TOKEN, from_number=FROM)
    assert ids(errors) == ["smsrouter.E005", "smsrouter.E008"]
    assert errors[1].hint == "Did you mean 'auth_token'?"

