"""Delivery reports are authenticated like inbound messages, through both ways in (Django's
handler and the ASGI root's fast path): a forged report is refused with 403 and writes
nothing, and the genuine report that comes next still applies.

Kannel cannot sign its requests, but smsrouter writes the dlr-url it calls: each one
carries a signature of the backend's name and the message's id (`sig`), token or not.
Vumi's events take the backend's `token` as its messages do, Twilio's status callbacks
its signature.
"""

import json
from urllib.parse import quote, urlencode, urlsplit

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

import smsrouter
from smsrouter.backends.kannel import dlr_signature
from smsrouter.backends.twilio import SIGNATURE_HEADER, signature
from smsrouter.models import Backend, Connection, Message
from tests.gateway import Answer

# Real commits: a send goes out once its transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+255700000001"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(params=["django", "fast path"])
def call(request, client, application):
    """`call(method, path, body, content_type)` -> (status, body), through Django's test
    client or the ASGI root that servers run (webhooks ahead of the middleware)."""
    if request.param == "django":
        def through_django(method, path, body=b"", content_type=FORM, headers=None):
            response = client.generic(method, path, body, content_type, headers=headers)
            return response.status_code, response.content
        return through_django

    def through_asgi(method, path, body=b"", content_type=FORM, headers=None):
        path, _, query = path.partition("?")
        extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
        communicator = HttpCommunicator(application, method, f"{path}?{query}", body=body, headers=[
            (b"host", b"testserver"), (b"content-type", content_type.encode()), *extra])

        async def respond():
            response = await communicator.get_response(timeout=5)
            await communicator.wait(timeout=5)
            return response["status"], response["body"]

        return async_to_sync(respond)()
    return through_asgi


def snapshot():
    """Everything a report could change, of every message."""
    return list(Message.objects.order_by("pk").values_list("pk", "status", "error", "updated_at"))


def refused(answer, error):
    status, body = answer
    assert (status, json.loads(body)) == (403, {"error": error})


# Kannel: the signed dlr-url.

MISSING = "sig is missing: Kannel must call the dlr-url smsrouter gave it, which carries sig="
WRONG = ("sig does not match message_id; if SECRET_KEY changed since the message was sent, "
         "keep the old key in SECRET_KEY_FALLBACKS")


@pytest.fixture
def kannel(settings, gateway):
    """A `kannel` backend with delivery reports, whose sendsms is the gateway; call it to
    set more options."""

    def configure(**options):
        settings.INSTALLED_BACKENDS = {"kannel": {
            "ENGINE": "smsrouter.backends.kannel.KannelBackend",
            "sendsms_url": f"{gateway.url}/cgi-bin/sendsms",
            "delivery_report_url": "https://sms.example.org", **options}}

    configure()
    gateway.default = Answer(202, "0: Accepted for delivery")
    return configure


def send(gateway):
    """A message Kannel accepted, and the dlr-url it was given, as a function that fills
    it in as Kannel does (`%d` the report type, `%A` the SMSC's answer)."""
    (message,) = smsrouter.send("hello", PHONE, backend="kannel")
    given = urlsplit(gateway.requests[-1].param("dlr-url"))

    def filled(kind, answer=""):
        return f"{given.path}?{given.query}".replace("%d", str(kind)).replace("%A", quote(answer))

    assert Message.objects.get(pk=message.id).status == "sent"
    return message, filled


def test_a_forged_report_is_403_and_writes_nothing_then_the_genuine_one_applies(
        call, kannel, gateway):
    """The issue's case: a tokenless backend, a `failed` forged from the message's id alone."""
    message, dlr_url = send(gateway)
    before = snapshot()
    refused(call("GET", f"/backend/kannel/status/?message_id={message.id}&status=16&answer=x"),
            MISSING)
    assert snapshot() == before
    assert call("GET", dlr_url(1)) == (200, b"")
    assert Message.objects.values_list("status", "error").get(pk=message.id) == ("delivered", "")


@pytest.mark.parametrize("forge", [
    lambda id: dlr_signature("kannel", id + 1),  # another message's
    lambda id: dlr_signature("kannel-2", id),  # another backend's, for the same id
    lambda id: dlr_signature("kannel", id, secret="another site's SECRET_KEY"),
    lambda id: dlr_signature("kannel", id)[:-1],
    lambda id: "A" * 16,
])
def test_a_report_with_a_wrong_sig_is_403_and_writes_nothing(call, kannel, gateway, forge):
    message, _ = send(gateway)
    before = snapshot()
    query = urlencode({"message_id": message.id, "status": 16, "sig": forge(message.id)})
    refused(call("GET", f"/backend/kannel/status/?{query}"), WRONG)
    refused(call("POST", "/backend/kannel/status/", query.encode()), WRONG)
    assert snapshot() == before


def test_the_sig_is_checked_in_a_posted_report_too(call, kannel, gateway):
    message, dlr_url = send(gateway)
    assert call("POST", "/backend/kannel/status/", dlr_url(2, "NACK").split("?")[1].encode()) == (
        200, b"")
    assert Message.objects.values_list("status", "error").get(pk=message.id) == (
        "failed", "undeliverable: NACK")


def test_with_a_token_the_token_alone_still_proves_a_report_sent_before_signing(
        call, kannel, gateway):
    """A dlr-url written before the upgrade has the token and no sig; a wrong sig, or the
    token without a sig, is no proof."""
    kannel(token="s3cret")
    message, dlr_url = send(gateway)
    assert "&sig=" in dlr_url(1) and dlr_url(1).endswith("&token=s3cret")
    before = snapshot()
    refused(call("GET", f"/backend/kannel/status/?message_id={message.id}&status=16"),
            "token is missing or wrong")
    bad_sig = urlencode(
        {"message_id": message.id, "status": 16, "sig": "A" * 16, "token": "s3cret"})
    refused(call("GET", f"/backend/kannel/status/?{bad_sig}"), WRONG)
    assert snapshot() == before
    unsigned = f"/backend/kannel/status/?message_id={message.id}&status=1&answer=&token=s3cret"
    assert call("GET", unsigned) == (200, b"")
    assert Message.objects.get(pk=message.id).status == "delivered"


def test_without_a_token_a_report_sent_before_signing_is_refused(call, kannel, gateway):
    """In flight at the upgrade, on a tokenless backend: nothing tells Kannel's from a
    forger's, so the message stays `sent`."""
    message, _ = send(gateway)
    refused(call("GET", f"/backend/kannel/status/?message_id={message.id}&status=1&answer="),
            MISSING)
    assert Message.objects.get(pk=message.id).status == "sent"


def test_a_new_secret_key_takes_reports_signed_with_the_old_one_in_the_fallbacks(
        call, kannel, gateway, settings):
    settings.SECRET_KEY = "the key when it was sent"
    message, dlr_url = send(gateway)
    settings.SECRET_KEY = "the new key"
    refused(call("GET", dlr_url(8)), WRONG)
    settings.SECRET_KEY_FALLBACKS = ["the key when it was sent"]
    assert call("GET", dlr_url(1)) == (200, b"")
    assert Message.objects.get(pk=message.id).status == "delivered"


def test_each_message_and_backend_has_its_own_short_url_safe_sig(settings):
    sigs = {dlr_signature("kannel", 1), dlr_signature("kannel", 2), dlr_signature("kannel-2", 1),
            dlr_signature("kannel", 1, secret="other")}
    assert len(sigs) == 4
    assert all(len(sig) == 16 and quote(sig, safe="") == sig for sig in sigs)
    assert dlr_signature("kannel", 1) == dlr_signature("kannel", 1, secret=settings.SECRET_KEY)


# Vumi and Twilio: reports take the same proof as inbound messages.


def sent_with_external_id(backend, external_id):
    connection = Connection.objects.create(
        backend=Backend.objects.create(name=backend), identity=PHONE)
    return Message.objects.create(direction="out", backend=connection.backend,
                                  connection=connection, text="hello", status="sent",
                                  external_id=external_id)


@pytest.fixture
def vumi(settings):
    settings.INSTALLED_BACKENDS = {"vumi": {
        "ENGINE": "smsrouter.backends.vumi.VumiBackend",
        "sendsms_url": "http://127.0.0.1:9/messages.json", "token": "s3cret"}}
    return sent_with_external_id("vumi", "vumi-out-1")


VUMI_WEBHOOKS = [
    ("/backend/vumi/", {"message_id": "vumi-in-1", "from_addr": PHONE, "content": "hi"}),
    ("/backend/vumi/status/", {"event_type": "nack", "user_message_id": "vumi-out-1",
                               "nack_reason": "forged"}),
]


@pytest.mark.parametrize(("path", "payload"), VUMI_WEBHOOKS)
@pytest.mark.parametrize("query", ["", "?token=guess", "?token="])
def test_vumi_events_need_the_token_as_its_messages_do(call, vumi, path, payload, query):
    before = snapshot()
    refused(call("POST", path + query, json.dumps(payload).encode(), "application/json"),
            "token is missing or wrong")
    assert snapshot() == before


def test_vumi_with_the_token_takes_a_message_and_an_event(call, vumi):
    for path, payload in VUMI_WEBHOOKS:
        assert call("POST", path + "?token=s3cret", json.dumps(payload).encode(),
                    "application/json") == (200, b"")
    assert Message.objects.values_list("status", "error").get(pk=vumi.pk) == (
        "failed", "nack: forged")
    assert Message.objects.filter(direction="in", text="hi").count() == 1


AUTH_TOKEN = "f" * 32


@pytest.fixture
def twilio(settings):
    settings.INSTALLED_BACKENDS = {"twilio": {
        "ENGINE": "smsrouter.backends.twilio.TwilioBackend", "account_sid": "AC" + "0" * 32,
        "auth_token": AUTH_TOKEN, "from_number": "+15017122661"}}
    return sent_with_external_id("twilio", "SM" + "1" * 32)


TWILIO_WEBHOOKS = [
    ("/backend/twilio/", {"MessageSid": "SM" + "2" * 32, "From": PHONE, "Body": "hi"}),
    ("/backend/twilio/status/", {"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed",
                                 "ErrorCode": "30003"}),
]


@pytest.mark.parametrize(("path", "form"), TWILIO_WEBHOOKS)
@pytest.mark.parametrize("signed_with", [None, "another account's token"])
def test_twilio_status_callbacks_need_the_signature_as_its_messages_do(
        call, twilio, path, form, signed_with):
    before = snapshot()
    headers = {} if signed_with is None else {
        SIGNATURE_HEADER: signature(signed_with, f"http://testserver{path}", form)}
    status, _ = call("POST", path, urlencode(form).encode(), headers=headers)
    assert status == 403
    assert snapshot() == before


def test_twilio_signed_takes_a_message_and_a_status_callback(call, twilio):
    for path, form in TWILIO_WEBHOOKS:
        headers = {SIGNATURE_HEADER: signature(AUTH_TOKEN, f"http://testserver{path}", form)}
        status, _ = call("POST", path, urlencode(form).encode(), headers=headers)
        assert status in (200, 204)
    assert Message.objects.values_list("status", "error").get(pk=twilio.pk) == (
        "failed", "Twilio error 30003 (failed)")
    assert Message.objects.filter(direction="in", text="hi").count() == 1
