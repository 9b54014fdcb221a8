"""AfricasTalkingBackend: token-guarded callbacks in, the bulk SMS API out, delivery reports back.

Sends go over real HTTP to the `gateway` stand-in, and the official SDK (africastalking.SMS)
is pointed at the same stand-in, so that what it sends for a message is compared with ours.
"""

import json

import africastalking
import pytest
from asgiref.sync import async_to_sync

import smsrouter
from smsrouter import checks
from smsrouter.backends import africastalking as africastalking_backend
from smsrouter.backends import backends
from smsrouter.backends.africastalking import AfricasTalkingBackend
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message

ENGINE = "smsrouter.backends.africastalking.AfricasTalkingBackend"
USERNAME = "smsrouter-test"
API_KEY = "atsk_" + "0123456789abcdef" * 4
TOKEN = "s3cret-token"
SENDER = "SMSROUTER"
WEBHOOK = f"/backend/at/?token={TOKEN}"
STATUS = f"/backend/at/status/?token={TOKEN}"
INBOUND = {"from": "+254711000001", "to": "22384", "text": "echo hi", "date": "2026-12-02 14:00:00",
           "id": "ATXid_inbound1", "linkId": "SampleLinkId123", "networkCode": "63902"}


@pytest.fixture
def config(settings, gateway):
    """One Africa's Talking backend whose API is the `gateway`; the echo app answers."""
    settings.INSTALLED_BACKENDS = {"at": {
        "ENGINE": ENGINE, "username": USERNAME, "api_key": API_KEY, "sender_id": SENDER,
        "token": TOKEN, "api_url": gateway.url,
    }}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings.INSTALLED_BACKENDS["at"]


def recipient(number, code=101, status="Success", message_id=None):
    return {"statusCode": code, "number": number, "status": status, "cost": "KES 0.8000",
            "messageId": message_id or f"ATXid_{number[-4:]}"}


def accepts(gateway, *recipients):
    """One bulk answer: 201 with a status for each recipient."""
    body = {"SMSMessageData": {"Message": f"Sent to {len(recipients)}/{len(recipients)}",
                               "Recipients": list(recipients)}}
    gateway.answer(201, json.dumps(body), headers={"Content-Type": "application/json"})


def attempt(msg):
    row = Message.objects.get(pk=msg.id)
    return row.status, row.external_id, row.error


# The request, against the SDK and the documented format.
@pytest.mark.django_db
def test_a_send_is_the_request_the_official_sdk_makes(config, gateway,
                                                      django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001"), recipient("+254711000002"))
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("Habari ☀️", ["+254711000001", "+254711000002"], backend="at")
    africastalking.initialize(USERNAME, API_KEY)
    sdk = africastalking.SMS
    sdk._baseUrl = gateway.url + "/version1"  # the SDK has no option for its host
    accepts(gateway, recipient("+254711000001"), recipient("+254711000002"))
    sdk.send("Habari ☀️", ["+254711000001", "+254711000002"], sender_id=SENDER)
    ours, theirs = gateway.requests
    assert (ours.method, ours.path) == (theirs.method, theirs.path) == ("POST", "/version1/messaging")
    for header in ("apiKey", "Accept"):
        assert ours.headers[header] == theirs.headers[header]
    assert ours.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert theirs.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert ours.form() == theirs.form()


@pytest.mark.django_db
def test_the_request_has_the_documented_fields(config, gateway, django_capture_on_commit_callbacks):
    """POST /version1/messaging, apiKey and Accept headers, username/to/message/from."""
    accepts(gateway, recipient("+254711000001"))
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hi", "+254711000001", backend="at")
    (seen,) = gateway.requests
    assert (seen.method, seen.path) == ("POST", "/version1/messaging")
    assert (seen.headers["apiKey"], seen.headers["Accept"]) == (API_KEY, "application/json")
    assert seen.form() == {"username": USERNAME, "to": "+254711000001", "message": "hi",
                           "from": SENDER, "bulkSMSMode": "1"}


@pytest.mark.django_db
def test_without_sender_id_no_from_is_sent(config, gateway, settings,
                                           django_capture_on_commit_callbacks):
    settings.INSTALLED_BACKENDS = {"at": {k: v for k, v in config.items() if k != "sender_id"}}
    accepts(gateway, recipient("+254711000001"))
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hi", "+254711000001", backend="at")
    assert "from" not in gateway.requests[0].form()


@pytest.mark.parametrize(("options", "url"), [
    ({}, "https://api.africastalking.com"),
    ({"sandbox": True}, "https://api.sandbox.africastalking.com"),
    ({"sandbox": True, "api_url": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
])
def test_the_host_follows_sandbox_and_api_url(options, url):
    assert AfricasTalkingBackend("at", username="sandbox", api_key="k", token="t",
                                 **options).api_url() == url


@pytest.mark.django_db
def test_a_single_number_is_matched_in_whatever_format_the_answer_gives_it(
        config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001", message_id="ATXid_local"))
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "0711000001", backend="at")
    assert attempt(msg)[:2] == ("sent", "ATXid_local")


# Inbound messages.
@pytest.mark.django_db
def test_an_sms_is_routed_and_its_details_kept(client, config, gateway,
                                               django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001", message_id="ATXid_reply"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(WEBHOOK, INBOUND)
    assert response.status_code == 200
    incoming = Message.objects.get(direction="in")
    assert (incoming.text, incoming.connection.identity, incoming.external_id) == (
        "echo hi", "+254711000001", "ATXid_inbound1")
    assert incoming.fields == {"africastalking": {
        "to": "22384", "date": "2026-12-02 14:00:00", "linkId": "SampleLinkId123",
        "networkCode": "63902"}}
    reply = Message.objects.get(direction="out")
    assert (reply.text, reply.status, reply.external_id) == ("hi", "sent", "ATXid_reply")


@pytest.mark.parametrize(("missing", "error"), [
    ("from", "from is required"), ("text", "text is required (it may be empty)")])
@pytest.mark.django_db
def test_a_callback_without_a_field_is_400_naming_it(client, config, missing, error):
    response = client.post(WEBHOOK, {k: v for k, v in INBOUND.items() if k != missing})
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert Message.objects.count() == 0


@pytest.mark.parametrize("path", ["/backend/at/", "/backend/at/?token=wrong",
                                  "/backend/at/?token=", "/backend/at/status/",
                                  "/backend/at/status/?token=s3cret"])
@pytest.mark.django_db
def test_a_missing_or_wrong_token_is_403_and_nothing_is_written(client, config, gateway, path):
    response = client.post(path, INBOUND)
    assert response.status_code == 403
    assert "token" in response.json()["error"] and TOKEN not in response.content.decode()
    assert Message.objects.count() == 0 and gateway.requests == []


@pytest.mark.django_db
def test_the_token_is_checked_before_any_field(client, config):
    assert client.post("/backend/at/", {"text": "no from"}).status_code == 403


@pytest.mark.django_db
def test_a_retried_id_is_routed_once(client, config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001"))
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(WEBHOOK, INBOUND).status_code == 200
    assert Message.objects.filter(direction="in").count() == 1
    assert len(gateway.requests) == 1


# Outbound messages.
@pytest.mark.django_db
def test_messages_of_one_text_go_in_one_request_and_are_matched_by_number(
        config, gateway, django_capture_on_commit_callbacks):
    """The answer lists recipients in its own order: each message gets its number's id."""
    accepts(gateway, recipient("+254711000002", message_id="ATXid_b"),
            recipient("+254711000001", message_id="ATXid_a"))
    accepts(gateway, recipient("+254711000003", message_id="ATXid_c"))
    with django_capture_on_commit_callbacks(execute=True):
        bulk = smsrouter.send("same", ["+254711000001", "+254711000002"], backend="at")
    with django_capture_on_commit_callbacks(execute=True):
        other = smsrouter.send("other", "+254711000003", backend="at")
    assert [attempt(m)[:2] for m in bulk + other] == [
        ("sent", "ATXid_a"), ("sent", "ATXid_b"), ("sent", "ATXid_c")]
    assert [r.form()["to"] for r in gateway.requests] == [
        "+254711000001,+254711000002", "+254711000003"]


def test_a_text_to_many_numbers_goes_in_requests_of_at_most_the_cap(config, gateway):
    """RECIPIENTS_PER_REQUEST bounds a request, and so what a retry of one can double."""
    config["concurrency"] = 1  # the answers meet the requests in order
    cap = africastalking_backend.RECIPIENTS_PER_REQUEST
    numbers = [f"+2547110{n:05}" for n in range(2 * cap + 1)]
    groups = [numbers[:cap], numbers[cap:2 * cap], numbers[2 * cap:]]
    for group in groups:
        accepts(gateway, *(recipient(number, message_id=f"ATXid_{number}") for number in group))
    row = Backend(name="at")
    messages = [OutgoingMessage("same", Connection(backend=row, identity=number),
                                record=Message(pk=n + 1)) for n, number in enumerate(numbers)]
    outcomes = async_to_sync(backends["at"].send)(messages)
    assert [r.form()["to"] for r in gateway.requests] == [",".join(g) for g in groups]
    assert [o.external_id for o in outcomes] == [f"ATXid_{number}" for number in numbers]


@pytest.mark.django_db
def test_one_recipient_refused_fails_only_its_message(config, gateway,
                                                      django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001"),
            recipient("+254711000002", 403, "InvalidPhoneNumber"),
            recipient("+254711000003", 500, "InternalServerError"))
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+254711000001", "+254711000002", "+254711000003"],
                                  backend="at")
    states = [attempt(m) for m in messages]
    assert states[0][:2] == ("sent", "ATXid_0001")
    assert states[1][0] == "failed" and "Africa's Talking 403: InvalidPhoneNumber" in states[1][2]
    assert states[2][0] == "queued" and "Africa's Talking 500" in states[2][2]  # retried later


@pytest.mark.parametrize(("code", "name", "state"), [
    (100, "Processed", "sent"), (102, "Queued", "sent"),
    (401, "RiskHold", "failed"), (402, "InvalidSenderId", "failed"),
    (404, "UnsupportedNumberType", "failed"), (407, "CouldNotRoute", "failed"),
    (409, "DoNotDisturbRejection", "failed"), (501, "GatewayError", "queued"),
    (502, "RejectedByGateway", "queued"),
])
@pytest.mark.django_db
def test_each_status_code_is_sent_refused_or_retried(config, gateway, code, name, state,
                                                     django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001", code, name))
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+254711000001", backend="at")
    status, external_id, error = attempt(msg)
    assert status == state
    assert (external_id, error) == (("ATXid_0001", "") if state == "sent" else
                                    (None, f"Africa's Talking {code}: {name} "
                                     f"(POST {gateway.url}/version1/messaging)"))
    assert Connection.objects.get().opted_out_at is None


@pytest.mark.django_db
def test_a_number_missing_from_the_answer_fails_alone(config, gateway,
                                                      django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001"))
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+254711000001", "+254711000002"], backend="at")
    assert [attempt(m)[0] for m in messages] == ["sent", "failed"]
    assert attempt(messages[1])[2].endswith("gave no status for +254711000002")


@pytest.mark.django_db
def test_a_blacklisted_number_is_opted_out(config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001", 406, "UserInBlacklist"))
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+254711000001", backend="at")
    assert attempt(msg)[0] == "failed"
    assert Connection.objects.get(identity="+254711000001").opted_out_at is not None


@pytest.mark.django_db
def test_insufficient_balance_is_retried(config, gateway, django_capture_on_commit_callbacks):
    accepts(gateway, recipient("+254711000001", 405, "InsufficientBalance"))
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+254711000001", backend="at")
    assert attempt(msg)[0] == "queued"


@pytest.mark.parametrize(("status", "state"), [(500, "queued"), (503, "queued"), (429, "queued"),
                                               (401, "failed")])
@pytest.mark.django_db
def test_http_errors_fail_the_request_by_their_kind(config, gateway, status, state,
                                                    django_capture_on_commit_callbacks):
    gateway.answer(status, "The supplied authentication is invalid", times=2)
    with django_capture_on_commit_callbacks(execute=True):
        messages = smsrouter.send("hi", ["+254711000001", "+254711000002"], backend="at")
    assert [attempt(m)[0] for m in messages] == [state, state]
    assert f"answered {status}" in attempt(messages[0])[2]


@pytest.mark.django_db
def test_a_success_without_recipients_is_not_taken_for_sent(config, gateway,
                                                            django_capture_on_commit_callbacks):
    gateway.answer(200, "<html>proxy</html>")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+254711000001", backend="at")
    assert attempt(msg)[0] == "failed" and "without SMSMessageData.Recipients" in attempt(msg)[2]


# Delivery reports.
@pytest.fixture
def sent(config, gateway, django_capture_on_commit_callbacks):
    """A message Africa's Talking took as ATXid_sent, reset to "queued" as if just stored."""
    accepts(gateway, recipient("+254711000001", message_id="ATXid_sent"))
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hi", "+254711000001", backend="at")
    Message.objects.filter(pk=msg.id).update(status="queued")
    return msg


def report(client, status, id="ATXid_sent", **extra):
    return client.post(STATUS, {"id": id, "status": status, "phoneNumber": "+254711000001",
                                "networkCode": "63902", "retryCount": "0", **extra})


def stored(msg):
    return Message.objects.filter(pk=msg.id).values_list("status", "error").get()


@pytest.mark.parametrize(("at_status", "extra", "expected"), [
    ("Sent", {}, ("sent", "")),
    ("Submitted", {}, ("sent", "")),
    ("Buffered", {}, ("sent", "")),
    ("Success", {}, ("delivered", "")),
    ("Rejected", {"failureReason": "UserInBlackList"},
     ("failed", "Africa's Talking: Rejected (UserInBlackList)")),
    ("Failed", {"failureReason": "DeliveryFailure"},
     ("failed", "Africa's Talking: Failed (DeliveryFailure)")),
    ("AbsentSubscriber", {}, ("failed", "Africa's Talking: AbsentSubscriber")),
    ("Expired", {}, ("failed", "Africa's Talking: Expired")),
])
@pytest.mark.django_db
def test_a_delivery_report_moves_the_message(client, sent, at_status, extra, expected):
    assert report(client, at_status, **extra).status_code == 200
    assert stored(sent) == expected


@pytest.mark.django_db
def test_reports_out_of_order_never_move_a_message_back(client, sent):
    assert report(client, "Success").status_code == 200
    assert report(client, "Buffered").status_code == 200
    assert report(client, "Failed", failureReason="DeliveryFailure").status_code == 200
    assert stored(sent) == ("delivered", "")


@pytest.mark.parametrize(("reason", "opted_out"), [
    ("UserInBlackList", True), ("UserInBlacklist", True), ("DeliveryFailure", False)])
@pytest.mark.django_db
def test_a_report_that_the_number_is_blacklisted_opts_it_out(client, sent, gateway, reason,
                                                              opted_out,
                                                              django_capture_on_commit_callbacks):
    """As a 406 at send does: the next message to the number fails without a request."""
    assert report(client, "Rejected", failureReason=reason).status_code == 200
    assert (Connection.objects.get().opted_out_at is not None) is opted_out
    gateway.requests.clear()
    accepts(gateway, recipient("+254711000001"))
    with django_capture_on_commit_callbacks(execute=True):
        (later,) = smsrouter.send("again", "+254711000001", backend="at")
    assert attempt(later)[0] == ("failed" if opted_out else "sent")
    assert len(gateway.requests) == (0 if opted_out else 1)


@pytest.mark.parametrize(("data", "error"), [
    ({"id": "ATXid_sent", "status": "Delivered"}, "status 'Delivered' is not a delivery status"),
    ({"id": "ATXid_sent"}, "status '' is not"),
    ({"status": "Success"}, "id is required"),
])
@pytest.mark.django_db
def test_a_report_without_a_known_status_or_id_is_400_naming_it(client, sent, data, error):
    response = client.post(STATUS, data)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert stored(sent) == ("queued", "")


# System checks.
def check(settings, **options):
    settings.INSTALLED_BACKENDS = {"at": {"ENGINE": ENGINE, **options}}
    return checks.check_backends()


GOOD = {"username": USERNAME, "api_key": API_KEY, "token": TOKEN}


def test_a_complete_configuration_passes(settings):
    assert check(settings, **GOOD, sender_id=SENDER, api_url="https://api.africastalking.com") == []
    assert check(settings, **{**GOOD, "username": "sandbox"}, sandbox=True) == []


def test_username_api_key_and_token_are_required(settings):
    errors = check(settings)
    assert [e.id for e in errors] == ["smsrouter.E005"] * 3
    assert [e.msg for e in errors] == [f"Backend 'at' needs the option {o!r}."
                                       for o in ("username", "api_key", "token")]


@pytest.mark.parametrize(("options", "expected"), [
    ({"username": ""}, "smsrouter.E100"),
    ({"api_key": ""}, "smsrouter.E101"),
    ({"token": ""}, "smsrouter.E102"),
    ({"sandbox": True}, "smsrouter.E103"),
    ({"api_url": "api.africastalking.com"}, "smsrouter.E104"),
    ({"api_url": "ftp://api.africastalking.com"}, "smsrouter.E104"),
    ({"sandbox": "yes"}, "smsrouter.E009"),
    ({"apikey": API_KEY}, "smsrouter.E008"),
])
def test_wrong_values(settings, options, expected):
    assert [e.id for e in check(settings, **{**GOOD, **options})] == [expected]


def test_the_sandbox_error_names_its_username(settings):
    (error,) = check(settings, **GOOD, sandbox=True)
    assert "'sandbox'" in error.hint


@pytest.mark.django_db
def test_an_empty_token_refuses_every_callback(client, config, settings):
    settings.INSTALLED_BACKENDS = {"at": {**config, "token": ""}}
    assert client.post("/backend/at/?token=", INBOUND).status_code == 403
    assert Message.objects.count() == 0
