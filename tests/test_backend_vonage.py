"""VonageBackend: signed webhooks in, /sms/json out, delivery receipts back.

HMAC signatures are proved against Vonage's own library (vonage_http_client.Auth), and the
legacy md5hash, which that library no longer computes, against the recipe of Vonage's
"Signing messages" guide. The send request is compared with the one vonage_sms.Sms makes,
both over real HTTP to the `gateway` stand-in. Requests are signed with a timestamp, NOW,
as Vonage signs them.
"""

import base64
import hashlib
import json

import pytest
import requests
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_sms import Sms, SmsMessage

import smsrouter
from smsrouter import checks
from smsrouter.backends.base import PartOf
from smsrouter.backends.vonage import VonageBackend, signature
from smsrouter.models import Connection, Message

ENGINE = "smsrouter.backends.vonage.VonageBackend"
KEY, API_SECRET, SECRET = "abcd1234", "Sup3rSecret", "s1gnature-secret"
FROM = "+447700900001"
WEBHOOK = "/backend/vonage/"
STATUS = "/backend/vonage/status/"
NOW = 1_767_225_600  # 2026-01-01 00:00:00 UTC
INBOUND = {
    "msisdn": "255700000001",
    "to": "447700900001",
    "messageId": "0A0000000123ABCD1",
    "text": "echo hi",
    "type": "text",
    "keyword": "ECHO",
    "api-key": KEY,
    "message-timestamp": "2026-01-01 00:00:00",
    "nonce": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
}


@pytest.fixture
def config(settings, gateway):
    """One Vonage backend whose API is the `gateway`; the echo app answers."""
    settings.INSTALLED_BACKENDS = {"vonage": {
        "ENGINE": ENGINE, "api_key": KEY, "api_secret": API_SECRET, "from_number": FROM,
        "signature_secret": SECRET, "api_url": gateway.url,
    }}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings.INSTALLED_BACKENDS["vonage"]


def md5hash(params, secret=SECRET):
    """The legacy signature as Vonage's guide describes it: the parameters sorted, each as
    "&name=value" with "&" and "=" in values made "_", the secret appended, MD5 in hex."""
    clean = {name: value.replace("&", "_").replace("=", "_") for name, value in params.items()}
    joined = "".join(f"&{name}={clean[name]}" for name in sorted(clean))
    return hashlib.md5((joined + secret).encode()).hexdigest()


def signed(params, *, timestamp=NOW, secret=SECRET):
    """The parameters as Vonage sends them, signed with md5hash (the default method)."""
    params = {**params, "timestamp": str(timestamp)}
    return {**params, "sig": md5hash(params, secret)}


def accepts(gateway, *ids, status="0"):
    """/sms/json's answer to one message: a part per id, each with that status."""
    gateway.answer(200, json.dumps({"message-count": str(len(ids)), "messages": [
        {"to": "255700000001", "message-id": part_id, "status": status,
         "remaining-balance": "3.14", "message-price": "0.03", "network": "64002"}
        for part_id in ids]}), headers={"Content-Type": "application/json"})


def refuses(gateway, status, error_text):
    gateway.answer(200, json.dumps({"message-count": "1", "messages": [
        {"status": status, "error-text": error_text}]}),
        headers={"Content-Type": "application/json"})


# The signature, against Vonage's library and guide.
BODIES = [
    INBOUND,
    {**INBOUND, "text": "Habari ya asubuhi ☀️ ሰላም"},
    {**INBOUND, "text": "a=b&c d%20+", "keyword": "A=B"},
    {**INBOUND, "text": ""},
    {**INBOUND, "concat": "true", "concat-ref": "17", "concat-total": "2", "concat-part": "1"},
]


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
@pytest.mark.parametrize("body", BODIES, ids=["inbound", "unicode", "escapes", "empty", "concat"])
def test_an_hmac_signature_passes_vonages_own_check(method, body):
    params = {**body, "timestamp": str(NOW)}
    sig = signature(SECRET, method, params)
    sdk = Auth(api_key=KEY, signature_secret=SECRET, signature_method=method)
    assert sdk.check_signature({**params, "sig": sig})
    assert not sdk.check_signature({**params, "text": "tampered", "sig": sig})


@pytest.mark.parametrize("body", BODIES, ids=["inbound", "unicode", "escapes", "empty", "concat"])
def test_an_md5hash_signature_follows_vonages_guide(body):
    params = {**body, "timestamp": str(NOW)}
    assert signature(SECRET, "md5hash", params) == md5hash(params)


# Inbound messages.
@pytest.mark.parametrize("how", ["get", "post-form", "post-json"])
@pytest.mark.django_db
def test_a_signed_sms_is_routed_and_the_reply_goes_out_by_the_sms_api(
    client, config, gateway, django_capture_on_commit_callbacks, how
):
    accepts(gateway, "0B00000000000001")
    data = signed(INBOUND)
    with django_capture_on_commit_callbacks(execute=True):
        if how == "get":
            response = client.get(WEBHOOK, data)
        elif how == "post-form":
            response = client.post(WEBHOOK, data)
        else:
            response = client.post(WEBHOOK, data, content_type="application/json")
    assert response.status_code == 200
    incoming = Message.objects.get(direction="in")
    assert (incoming.text, incoming.connection.identity, incoming.external_id) == (
        "echo hi", "+255700000001", INBOUND["messageId"])
    assert incoming.fields == {"to": "447700900001", "vonage": {
        "type": "text", "keyword": "ECHO", "message-timestamp": "2026-01-01 00:00:00"}}
    reply = Message.objects.get(direction="out")
    (seen,) = gateway.requests
    assert (seen.method, seen.path) == ("POST", "/sms/json")
    assert seen.form() == {"api_key": KEY, "api_secret": API_SECRET, "from": "447700900001",
                           "to": "255700000001", "text": "hi", "client-ref": str(reply.id)}
    assert (reply.status, reply.external_id, reply.in_response_to_id) == (
        "sent", "0B00000000000001", incoming.id)


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
@pytest.mark.django_db
def test_each_hmac_method_is_taken_as_vonage_sends_it_in_upper_case(
    client, config, settings, method
):
    settings.INSTALLED_BACKENDS = {"vonage": {**config, "signature_method": method}}
    params = {**INBOUND, "text": "ሰላም", "timestamp": str(NOW)}
    sdk = Auth(api_key=KEY, signature_secret=SECRET, signature_method=method)
    response = client.post(WEBHOOK, {**params, "sig": sdk.sign_params(dict(params)).upper()})
    assert response.status_code == 200
    assert Message.objects.get().text == "ሰላም"


@pytest.mark.parametrize(
    "data",
    [
        {**INBOUND, "timestamp": str(NOW)},
        {**signed(INBOUND), "sig": ""},
        signed(INBOUND, secret="another secret"),
        {**signed(INBOUND), "text": "echo something else"},
        {**signed(INBOUND), "sig": "ሰላም"},
    ],
    ids=["missing", "empty", "other-secret", "other-text", "not-ascii"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.django_db
def test_a_bad_or_missing_signature_is_403_and_nothing_is_written(
    client, config, gateway, data, method
):
    response = client.get(WEBHOOK, data) if method == "GET" else client.post(WEBHOOK, data)
    assert response.status_code == 403
    assert "sig " in response.json()["error"]
    assert SECRET not in response.content.decode()
    assert not Message.objects.exists() and gateway.requests == []


@pytest.mark.django_db
def test_a_retry_signed_a_day_ago_is_still_taken_and_routed_once(client, config, gateway):
    """Vonage retries a webhook it got no 2xx for, signed when it was first sent: its age
    is no reason to lose it, and the retry of one already taken is not routed again."""
    for _ in range(2):
        response = client.post(WEBHOOK, signed(INBOUND, timestamp=NOW - 86_400))
        assert response.status_code == 200
    assert Message.objects.filter(direction="in").count() == 1


@pytest.mark.django_db
def test_a_signed_request_without_a_timestamp_is_403(client, config):
    params = {key: value for key, value in INBOUND.items() if key != "timestamp"}
    response = client.post(WEBHOOK, {**params, "sig": md5hash(params)})
    assert response.status_code == 403
    assert response.json()["error"].startswith("timestamp is missing")


@pytest.mark.django_db
def test_the_signature_is_checked_before_any_field(client, config):
    """An unsigned request learns nothing about which fields are required."""
    assert client.post(WEBHOOK, {"text": "no msisdn"}).status_code == 403
    assert client.get(WEBHOOK, {"text": "no msisdn"}).status_code == 403


@pytest.mark.django_db
def test_without_a_signature_secret_every_webhook_is_refused(client, config, settings):
    """`manage.py check` reports the missing option (E005); the webhook stays shut."""
    settings.INSTALLED_BACKENDS = {"vonage": {
        key: value for key, value in config.items() if key != "signature_secret"}}
    response = client.post(WEBHOOK, signed(INBOUND))
    assert response.status_code == 403
    assert "signature_secret is not set" in response.json()["error"]


@pytest.mark.django_db
def test_an_unknown_signature_method_refuses_every_webhook(client, config, settings):
    settings.INSTALLED_BACKENDS = {"vonage": {**config, "signature_method": "sha384"}}
    response = client.post(WEBHOOK, signed(INBOUND))
    assert response.status_code == 403
    assert response.json()["error"].startswith("signature_method 'sha384' is not one of")
    assert not Message.objects.exists()


def _without(name):
    return {key: value for key, value in INBOUND.items() if key != name}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_without("msisdn"), "msisdn is required"),
        ({**INBOUND, "msisdn": " "}, "msisdn is required"),
        (_without("text"), "text is required (it may be empty)"),
        ({**INBOUND, "concat": "true", "concat-total": "2", "concat-part": "1"},
         "concat-ref is required with concat=true"),
        ({**INBOUND, "concat": "true", "concat-ref": "9", "concat-total": "two",
          "concat-part": "1"}, "concat-total must be a whole number from 1 to 255, not 'two'"),
        ({**INBOUND, "concat": "true", "concat-ref": "9", "concat-total": "2",
          "concat-part": "²"}, "concat-part must be a whole number from 1 to 255, not '²'"),
        ({**INBOUND, "concat": "true", "concat-ref": "9", "concat-total": "2",
          "concat-part": "0"}, "concat-part must be a whole number from 1 to 255, not '0'"),
        ({**INBOUND, "concat": "true", "concat-ref": "9", "concat-total": "2",
          "concat-part": "3"}, "concat-part is 3, but concat-total says 2 parts"),
    ],
)
@pytest.mark.django_db
def test_a_signed_request_with_a_bad_field_is_400_naming_it(client, config, gateway, data, error):
    response = client.post(WEBHOOK, signed(data))
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists() and not Connection.objects.exists()
    assert gateway.requests == []


@pytest.mark.parametrize(("body", "error"), [
    (b"{not json", "body is not JSON"),
    (b'["msisdn"]', "body must be a JSON object of names and plain values"),
    (b'{"msisdn": {"nested": 1}}', "body must be a JSON object of names and plain values"),
])
@pytest.mark.django_db
def test_a_json_body_that_is_no_flat_object_is_400(client, config, body, error):
    response = client.post(WEBHOOK, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_json_numbers_are_signed_as_vonages_library_writes_them(client, config):
    params = {**INBOUND, "timestamp": NOW, "concat-total": 1}
    as_text = {name: str(value) for name, value in params.items()}
    response = client.post(WEBHOOK, {**params, "sig": md5hash(as_text)},
                           content_type="application/json")
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_retried_message_id_is_routed_once(
    client, config, gateway, django_capture_on_commit_callbacks
):
    """Vonage retries a webhook it got no 200 for: the retry is answered, not routed."""
    accepts(gateway, "0B00000000000001")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(WEBHOOK, signed(INBOUND)).status_code == 200
    assert Message.objects.filter(direction="in").count() == 1
    assert len(gateway.requests) == 1


def test_a_concatenated_part_says_where_it_belongs(rf, config):
    data = signed({**INBOUND, "concat": "true", "concat-ref": "4C", "concat-total": "3",
                   "concat-part": "2"})
    inbound = VonageBackend("vonage", **config).parse_inbound(rf.post(WEBHOOK, data))
    assert inbound.part == PartOf(reference="4C", total=3, number=2)


@pytest.mark.django_db
def test_two_parts_are_routed_once_as_one_message(
    client, config, gateway, django_capture_on_commit_callbacks
):
    """Needs smsrouter.parts: the parts are kept until all are in, then joined in order."""
    accepts(gateway, "0B00000000000001")
    parts = [("2", "world"), ("1", "echo hello ")]  # the second part arrives first
    for number, text in parts:
        data = signed({**INBOUND, "messageId": f"0A0{number}", "text": text, "concat": "true",
                       "concat-ref": "77", "concat-total": "2", "concat-part": number})
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(WEBHOOK, data).status_code == 200
    (incoming,) = Message.objects.filter(direction="in")
    assert incoming.text == "echo hello world"
    (seen,) = gateway.requests
    assert seen.form()["text"] == "hello world"


# Outbound messages.
class PlainHttp(requests.adapters.HTTPAdapter):
    """The SDK calls https://{rest_host} only: this takes it to the plain-HTTP gateway."""

    def send(self, request, **kwargs):
        request.url = "http://" + request.url.removeprefix("https://")
        return super().send(request, **kwargs)


def sdk_sends(gateway, message):
    """What vonage_sms.Sms posts for this message, to the gateway."""
    client = HttpClient(Auth(api_key=KEY, api_secret=API_SECRET),
                        HttpClientOptions(rest_host=f"127.0.0.1:{gateway.port}"))
    client._session.mount("https://", PlainHttp())  # the SDK has no option for the scheme
    accepts(gateway, "0B00000000000009")
    Sms(client).send(message)
    return gateway.requests[-1]


@pytest.mark.parametrize(("text", "sdk_type"), [
    ("Hello, World! {£€}", None),
    ("Habari ☀️ ሰላም", "unicode"),
])
@pytest.mark.django_db
def test_the_send_request_is_the_one_vonages_library_makes(
    config, gateway, django_capture_on_commit_callbacks, text, sdk_type
):
    accepts(gateway, "0B00000000000001")
    with django_capture_on_commit_callbacks(execute=True):
        (sent,) = smsrouter.send(text, "+255700000001", backend="vonage")
    (ours,) = gateway.requests
    theirs = sdk_sends(gateway, SmsMessage(to="255700000001", from_="447700900001", text=text,
                                           type=sdk_type, client_ref=str(sent.id)))
    assert (ours.method, ours.path) == (theirs.method, theirs.path) == ("POST", "/sms/json")
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"] == (
        "application/x-www-form-urlencoded")
    # The SDK sends the credentials as Basic auth, the API reference lists them as fields.
    credentials = base64.b64decode(theirs.headers["Authorization"].removeprefix("Basic "))
    assert credentials.decode() == f"{ours.form()['api_key']}:{ours.form()['api_secret']}"
    assert {name: value for name, value in ours.form().items()
            if name not in ("api_key", "api_secret")} == theirs.form()
    assert Message.objects.get(pk=sent.id).external_id == "0B00000000000001"


@pytest.mark.django_db
def test_a_long_text_keeps_the_first_parts_message_id(
    config, gateway, django_capture_on_commit_callbacks
):
    accepts(gateway, "0B0000000000000A", "0B0000000000000B", "0B0000000000000C")
    with django_capture_on_commit_callbacks(execute=True):
        (sent,) = smsrouter.send("x" * 400, "+255700000001", backend="vonage")
    row = Message.objects.get(pk=sent.id)
    assert (row.status, row.external_id) == ("sent", "0B0000000000000A")


def attempt(msg):
    """What the sender recorded of the message's attempts: (status, attempts, retry due)."""
    row = Message.objects.get(pk=msg.id)
    return row.status, row.attempts, row.due_at is not None, row.error


@pytest.mark.parametrize(("status", "text", "temporary"), [
    ("1", "Throttled", True),
    ("5", "Internal Error", True),
    ("9", "Partner Quota Violation", True),
    ("3", "Invalid Parameters", False),
    ("4", "Bad Credentials", False),
    ("7", "Number barred.", False),
    ("15", "Illegal Sender Address - rejected", False),
    ("29", "Non White-listed Destination - rejected", False),
])
@pytest.mark.django_db
def test_a_refusal_keeps_vonages_status_and_is_temporary_only_when_a_retry_may_cure_it(
    config, gateway, django_capture_on_commit_callbacks, status, text, temporary
):
    refuses(gateway, status, text)
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="vonage")
    assert attempt(msg) == ("queued" if temporary else "failed", 1, temporary,
                            f"Vonage status {status}: {text}")


@pytest.mark.django_db
def test_a_part_refused_after_another_was_sent_fails_the_message_for_good(
    config, gateway, django_capture_on_commit_callbacks
):
    """Retrying would send the first part again."""
    gateway.answer(200, json.dumps({"message-count": "2", "messages": [
        {"message-id": "0B01", "status": "0"}, {"status": "1", "error-text": "Throttled"}]}),
        headers={"Content-Type": "application/json"})
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("y" * 200, "+255700000001", backend="vonage")
    assert attempt(msg) == ("failed", 1, False,
                            "Vonage status 1: Throttled (1 of 2 parts were sent)")


@pytest.mark.django_db
def test_one_message_failing_does_not_fail_the_others(
    config, gateway, settings, django_capture_on_commit_callbacks
):
    settings.INSTALLED_BACKENDS = {"vonage": {**config, "concurrency": 1}}  # answers in order
    accepts(gateway, "0B01")
    gateway.answer(503, "Service Unavailable")
    refuses(gateway, "6", "Invalid Message")
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+1", "+2", "+3"], backend="vonage")
    assert [attempt(m)[:3] for m in messages] == [
        ("sent", 1, False), ("queued", 1, True), ("failed", 1, False)]
    assert messages[1].error.endswith("answered 503: Service Unavailable")


@pytest.mark.django_db
def test_a_success_without_vonages_messages_is_not_taken_for_sent(
    config, gateway, django_capture_on_commit_callbacks
):
    """A 200 from something that is not Vonage (a wrong api_url, a portal) proves nothing."""
    gateway.answer(200, "<html>Welcome</html>", headers={"Content-Type": "text/html"})
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+255700000001", backend="vonage")
    assert msg.status == "failed" and "answered 200 without Vonage's messages" in msg.error


# Delivery receipts.
@pytest.fixture
def sent(config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, "0B0000000000000A")
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = smsrouter.send("hi", "+255700000001", backend="vonage")
    return message


def receipt(status, **extra):
    return signed({"msisdn": "255700000001", "to": "447700900001", "network-code": "64002",
                   "messageId": "0B0000000000000A", "price": "0.03", "status": status,
                   "scts": "2601010000", "err-code": "0", "api-key": KEY,
                   "message-timestamp": "2026-01-01 00:00:05", **extra})


@pytest.mark.parametrize("how", ["get", "post"])
@pytest.mark.django_db
def test_a_receipt_moves_the_message_forward_only(client, sent, how):
    call = client.get if how == "get" else client.post
    assert call(STATUS, receipt("delivered")).status_code == 204
    assert call(STATUS, receipt("buffered")).status_code == 204
    assert Message.objects.values_list("status", "error").get(pk=sent.id) == ("delivered", "")


@pytest.mark.django_db
def test_a_receipt_for_a_later_part_finds_the_message_by_client_ref(client, sent):
    """Only the first part's id is stored; client-ref carries ours back on every part."""
    data = receipt("delivered", messageId="0B0000000000000B", **{"client-ref": str(sent.id)})
    assert client.post(STATUS, data).status_code == 204
    assert Message.objects.get(pk=sent.id).status == "delivered"


@pytest.mark.parametrize(("status", "code", "error", "opted_out"), [
    ("failed", "9", "Vonage err-code 9 (failed): the number opted out of messages from this "
                    "sender", True),
    ("rejected", "6", "Vonage err-code 6 (rejected)", False),
    ("expired", "", "Vonage: expired", False),
])
@pytest.mark.django_db
def test_a_failed_receipt_keeps_the_err_code(client, sent, status, code, error, opted_out):
    """err-code 9, Illegal Number, is Vonage's word that the user asked for no more messages
    from this sender: the number is opted out, as a STOP would."""
    assert client.post(STATUS, receipt(status, **{"err-code": code})).status_code == 204
    assert Message.objects.values_list("status", "error").get(pk=sent.id) == ("failed", error)
    assert (Connection.objects.get().opted_out_at is not None) is opted_out


@pytest.mark.parametrize(("data", "status_code", "error"), [
    (receipt("read"), 400, "status 'read' is not a status of a delivery receipt"),
    (receipt("delivered", messageId=""), 400, "messageId is required"),
    (receipt("delivered", messageId="0Bunknown"), 400,
     "messageId does not match a message sent through 'vonage'"),
    ({**receipt("delivered"), "status": "failed"}, 403, "sig does not match"),
])
@pytest.mark.django_db
def test_a_bad_receipt_changes_nothing(client, sent, data, status_code, error):
    response = client.post(STATUS, data)
    assert response.status_code == status_code
    assert response.json()["error"].startswith(error)
    assert Message.objects.get(pk=sent.id).status == "sent"


# System checks.
def check(settings, **options):
    settings.INSTALLED_BACKENDS = {"vonage": {"ENGINE": ENGINE, **options}}
    return checks.check_backends()


GOOD = {"api_key": KEY, "api_secret": API_SECRET, "from_number": FROM,
        "signature_secret": SECRET}


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_a_complete_configuration_passes(settings, method):
    assert check(settings, **GOOD, signature_method=method,
                 api_url="https://rest.nexmo.com") == []


def test_the_keys_the_sender_and_the_signature_secret_are_required(settings):
    errors = check(settings)
    assert [(e.id, e.msg) for e in errors] == [
        ("smsrouter.E005", f"Backend 'vonage' needs the option {option!r}.")
        for option in ("api_key", "api_secret", "from_number", "signature_secret")]


def test_an_unknown_signature_method_lists_vonages(settings):
    (error,) = check(settings, **GOOD, signature_method="sha384")
    assert error.id == "smsrouter.E120"
    assert error.hint == "Use the dashboard's method: one of md5hash, md5, sha1, sha256, sha512."


@pytest.mark.parametrize(("option", "check_id"), [
    ("api_key", "E121"), ("api_secret", "E122"), ("signature_secret", "E123"),
    ("from_number", "E124"),
])
def test_an_empty_key_secret_or_sender_is_an_error(settings, option, check_id):
    (error,) = check(settings, **{**GOOD, option: ""})
    assert error.id == f"smsrouter.{check_id}" and option in error.msg


@pytest.mark.parametrize("api_url", ["rest.nexmo.com", "ftp://rest.nexmo.com", "https://",
                                     "http://host:port"])
def test_api_url_must_be_an_absolute_http_url(settings, api_url):
    (error,) = check(settings, **GOOD, api_url=api_url)
    assert error.id == "smsrouter.E125" and repr(api_url) in error.msg
