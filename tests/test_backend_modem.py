"""ModemBackend: the bridge's posts in, /send out, status reports back, all behind the token.

The bridge is stood in for by the `gateway` fixture (real HTTP over loopback), answering
/send as tests/test_modem.py's real bridge does; that module runs the real one end to end.
"""

import json

import pytest

import smsrouter
from smsrouter import checks
from smsrouter.models import Message, SubmittedPart

ENGINE = "smsrouter.backends.modem.ModemBackend"
TOKEN = "m0dem-s3cret"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
PHONE = "+255700000001"


@pytest.fixture
def config(settings, gateway):
    settings.INSTALLED_BACKENDS = {"modem": {"ENGINE": ENGINE, "bridge_url": gateway.url,
                                             "token": TOKEN}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings.INSTALLED_BACKENDS["modem"]


def post(client, body, path="/backend/modem/", auth=AUTH):
    return client.post(path, json.dumps(body), content_type="application/json", **auth)


def sms(text="echo hi", id="a1", **extra):
    return {"id": id, "from": PHONE, "text": text, "timestamp": "2026-12-03T09:00:00+03:00",
            "part": None, **extra}


def references(gateway, *refs):
    gateway.answer(200, json.dumps({"references": list(refs)}),
                   headers={"Content-Type": "application/json"})


# Inbound.
@pytest.mark.django_db
def test_an_sms_is_routed_and_the_reply_goes_to_the_bridge(
        client, config, gateway, django_capture_on_commit_callbacks):
    references(gateway, "7-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, sms()).status_code == 200
    incoming = Message.objects.get(direction="in")
    assert (incoming.text, incoming.external_id, incoming.fields) == (
        "echo hi", "a1", {"modem": {"timestamp": "2026-12-03T09:00:00+03:00"}})
    (request,) = gateway.requests
    assert (request.path, request.headers["Authorization"]) == ("/send", f"Bearer {TOKEN}")
    reply = Message.objects.get(direction="out")
    assert request.json() == {"id": str(reply.id), "to": PHONE, "text": "hi"}
    assert (reply.status, reply.external_id) == ("sent", "7-1")


@pytest.mark.django_db
def test_a_repost_of_the_same_id_is_answered_and_not_routed_again(client, config, gateway):
    """The bridge posts a message again after a restart until it saw a 2xx."""
    gateway.answer(200, json.dumps({"references": ["1-1"]}), times=2)
    assert post(client, sms()).status_code == 200
    assert post(client, sms()).status_code == 200
    assert Message.objects.filter(direction="in").count() == 1


@pytest.mark.django_db
def test_the_parts_of_a_long_sms_are_routed_once_as_one_text(client, config):
    second = sms("world", id="p2", part={"reference": 300, "total": 2, "seqnum": 2})
    first = sms("echo hello ", id="p1", part={"reference": 300, "total": 2, "seqnum": 1})
    assert post(client, second).status_code == 200
    assert not Message.objects.exists()
    assert post(client, first).status_code == 200
    assert list(Message.objects.filter(direction="in").values_list("text", flat=True)) == [
        "echo hello world"]


@pytest.mark.parametrize(("body", "error"), [
    ({"from": PHONE, "text": "x"}, "id is required"),
    ({"id": "a", "from": PHONE}, "text is required"),
    ({"id": "a", "from": PHONE, "text": "x", "timestamp": 5}, "timestamp must be a string"),
    (sms(part=[1]), "part must be an object or null"),
    (sms(part={"reference": 1, "total": 2}), "part.seqnum must be a whole number"),
    (sms(part={"reference": 1, "total": 2, "seqnum": 3}), "part.seqnum is 3"),
    (sms(part={"reference": True, "total": 2, "seqnum": 1}), "part.reference must be"),
])
@pytest.mark.django_db
def test_a_bad_post_is_400_naming_the_field_and_writes_nothing(client, config, body, error):
    response = post(client, body)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert not Message.objects.exists()


@pytest.mark.parametrize("auth", [{}, {"HTTP_AUTHORIZATION": "Bearer wrong"},
                                  {"HTTP_AUTHORIZATION": TOKEN}])
@pytest.mark.parametrize("path", ["/backend/modem/", "/backend/modem/status/"])
@pytest.mark.django_db
def test_a_post_without_the_token_is_403_and_writes_nothing(client, config, auth, path):
    assert post(client, sms(), path=path, auth=auth).status_code == 403
    assert not Message.objects.exists()


# Outbound.
def send(django_capture_on_commit_callbacks, text="hi"):
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = smsrouter.send(text, PHONE, backend="modem")
    return Message.objects.get(pk=message.id)


@pytest.mark.django_db
def test_each_part_sent_is_kept_so_each_report_finds_the_message(
        client, config, gateway, django_capture_on_commit_callbacks):
    references(gateway, "4-1", "5-2")
    message = send(django_capture_on_commit_callbacks, "x" * 200)
    assert message.external_id == "4-1"
    assert list(SubmittedPart.objects.values_list("number", "external_id")) == [
        (1, "4-1"), (2, "5-2")]
    assert post(client, {"reference": "5-2", "status": "delivered", "code": 0},
                path="/backend/modem/status/").status_code == 200
    assert Message.objects.get(pk=message.pk).status == "sent"  # one part of two
    assert post(client, {"reference": "4-1", "status": "delivered", "code": 0},
                path="/backend/modem/status/").status_code == 200
    assert Message.objects.get(pk=message.pk).status == "delivered"


@pytest.mark.django_db
def test_no_network_at_the_bridge_is_retried_by_the_outbox(
        config, gateway, django_capture_on_commit_callbacks):
    gateway.answer(503, json.dumps({"error": "no network: the modem is searching"}))
    message = send(django_capture_on_commit_callbacks)
    assert (message.status, message.attempts, message.due_at is not None) == ("queued", 1, True)
    assert message.error.endswith("answered 503: no network: the modem is searching")


@pytest.mark.django_db
def test_a_refusal_by_the_modem_fails_the_message_with_its_words(
        config, gateway, django_capture_on_commit_callbacks):
    gateway.answer(422, json.dumps({"error": "AT+CMGS=20: +CMS ERROR: 304"}))
    message = send(django_capture_on_commit_callbacks)
    assert message.status == "failed" and message.error.endswith("+CMS ERROR: 304")


@pytest.mark.django_db
def test_a_200_without_references_is_not_taken_for_sent(
        config, gateway, django_capture_on_commit_callbacks):
    gateway.answer(200, "<html>a proxy's page</html>")
    message = send(django_capture_on_commit_callbacks)
    assert message.status == "failed" and "without the parts' references" in message.error


# Status reports.
@pytest.mark.parametrize(("report", "expected"), [
    ({"reference": "9-1", "status": "pending", "code": 0x20}, ("sent", "")),
    ({"reference": "9-1", "status": "delivered", "code": 0}, ("delivered", "")),
    ({"reference": "9-1", "status": "failed", "code": 0x46},
     ("failed", "modem: status report TP-ST 0x46 (validity period expired)")),
    ({"reference": "9-1", "status": "failed"}, ("failed", "modem: status report failed")),
])
@pytest.mark.django_db
def test_a_status_report_moves_the_message(client, config, gateway, report, expected,
                                           django_capture_on_commit_callbacks):
    references(gateway, "9-1")
    message = send(django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(status="queued")
    assert post(client, report, path="/backend/modem/status/").status_code == 200
    assert Message.objects.values_list("status", "error").get(pk=message.pk) == expected


@pytest.mark.parametrize(("report", "error"), [
    ({"status": "delivered"}, "reference is required"),
    ({"reference": "9-1", "status": "read"}, "status 'read' is not a status report's state"),
    ({"reference": "9-1", "status": "failed", "code": "x"}, "code must be a TP-ST value"),
    ({"reference": "9-1", "status": "failed", "code": 300}, "code must be a TP-ST value"),
])
@pytest.mark.django_db
def test_a_bad_report_is_400_naming_the_field(client, config, report, error):
    response = post(client, report, path="/backend/modem/status/")
    assert response.status_code == 400 and response.json()["error"].startswith(error)


# System checks.
def check(settings, **options):
    settings.INSTALLED_BACKENDS = {"modem": {"ENGINE": ENGINE, **options}}
    return sorted(error.id for error in checks.check_backends())


def test_a_complete_configuration_passes(settings):
    assert check(settings, bridge_url="http://192.168.1.20:8765", token=TOKEN) == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"bridge_url": "http://127.0.0.1:8765"}, ["smsrouter.E130"]),
    ({"bridge_url": "http://127.0.0.1:8765", "token": ""}, ["smsrouter.E130"]),
    ({"token": TOKEN}, ["smsrouter.E131"]),
    ({"token": TOKEN, "bridge_url": "127.0.0.1:8765"}, ["smsrouter.E131"]),
    ({}, ["smsrouter.E130", "smsrouter.E131"]),
])
def test_a_modem_without_a_token_or_a_bridge_url_is_an_error(settings, options, expected):
    assert check(settings, **options) == expected
