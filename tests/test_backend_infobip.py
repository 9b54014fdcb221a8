"""InfobipBackend: forwarded MOs in, /sms/3/messages out, delivery reports back.

Sends go over real HTTP to the `gateway` stand-in, and the request for a send is compared
with the one Infobip's official library (infobip_api_client) makes for it.
"""

import json

import pytest
from django.test import RequestFactory
from infobip_api_client import (ApiClient, Configuration, SmsApi, SmsDestination, SmsMessage,
                                SmsMessageContent, SmsRequest, SmsTextContent)

import smsrouter
from smsrouter import checks
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome, StatusReport
from smsrouter.backends.infobip import InfobipBackend
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message

ENGINE = "smsrouter.backends.infobip.InfobipBackend"
KEY = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef"
TOKEN = "s3cret-t0ken"
SENDER = "InfoSMS"
WEBHOOK = f"/backend/infobip/?token={TOKEN}"
STATUS = f"/backend/infobip/status/?token={TOKEN}"
MO = {
    "messageId": "817790313235066447",
    "from": "385916242493",
    "to": "385921004026",
    "text": "echo hi",
    "cleanText": "hi",
    "keyword": "ECHO",
    "receivedAt": "2016-10-06T09:28:39.220+0000",
    "smsCount": 1,
    "price": {"pricePerMessage": 0, "currency": "EUR"},
    "callbackData": "callbackData",
}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def config(settings, gateway):
    """One Infobip backend whose API is the `gateway`; the echo app answers."""
    settings.INSTALLED_BACKENDS = {"infobip": {
        "ENGINE": ENGINE, "api_key": KEY, "base_url": gateway.url, "sender": SENDER,
        "token": TOKEN,
    }}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings.INSTALLED_BACKENDS["infobip"]


def forward(client, *results, path=WEBHOOK, **body):
    """POST as Infobip forwards MOs: a JSON object with the messages in `results`."""
    payload = {"results": list(results), "messageCount": len(results),
               "pendingMessageCount": 0, **body}
    return client.post(path, json.dumps(payload), content_type="application/json")


def taken(*message_ids, group="PENDING", name="PENDING_ACCEPTED"):
    """Infobip's answer to /sms/3/messages taking each message."""
    return json.dumps({"bulkId": "bulk-1", "messages": [
        {"messageId": message_id, "destination": "255700000001",
         "status": {"groupId": 1, "groupName": group, "id": 26, "name": name,
                    "description": "Message sent to next instance"}}
        for message_id in message_ids]})


def accepts(gateway, *message_ids):
    gateway.answer(200, taken(*message_ids), headers=JSON)


def outgoing(message_id, to="+255700000001", text="hi"):
    """A stored-looking OutgoingMessage, for sends that need no database."""
    connection = Connection(backend=Backend(name="infobip"), identity=to)
    return OutgoingMessage(text, connection, record=Message(pk=message_id))


# Inbound messages.
@pytest.mark.django_db
def test_a_forwarded_mo_is_routed_and_the_reply_goes_out_by_the_api(
    client, config, gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = forward(client, MO)
    assert response.status_code == 200
    incoming = Message.objects.get(direction="in")
    assert (incoming.text, incoming.connection.identity, incoming.external_id) == (
        "echo hi", "+385916242493", "817790313235066447")
    assert incoming.fields == {"infobip": {
        "to": "385921004026", "receivedAt": "2016-10-06T09:28:39.220+0000",
        "keyword": "ECHO", "smsCount": 1}}
    (seen,) = gateway.requests
    reply = Message.objects.get(direction="out")
    assert (seen.method, seen.path) == ("POST", "/sms/3/messages")
    assert seen.headers["Authorization"] == f"App {KEY}"
    assert seen.headers["Content-Type"].startswith("application/json")
    assert seen.json() == {"messages": [{
        "sender": SENDER, "destinations": [{"to": "385916242493", "messageId": str(reply.id)}],
        "content": {"text": "hi"}}]}


@pytest.mark.django_db
def test_a_forward_of_two_messages_routes_both(client, config):
    second = {**MO, "messageId": "m2", "from": "385916242494", "text": "second"}
    response = forward(client, {**MO, "messageId": "m1", "text": "first"}, second)
    assert response.status_code == 200
    stored = Message.objects.filter(direction="in").order_by("external_id")
    assert [(m.external_id, m.connection.identity, m.text) for m in stored] == [
        ("m1", "+385916242493", "first"), ("m2", "+385916242494", "second")]


@pytest.mark.django_db
def test_a_forward_without_messages_stores_nothing(client, config):
    response = forward(client)
    assert response.status_code == 200
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_sender_that_is_not_a_number_is_kept_as_it_is(client, config):
    assert forward(client, {**MO, "from": "InfoSMS"}).status_code == 200
    assert Message.objects.get(direction="in").connection.identity == "InfoSMS"


@pytest.mark.django_db
def test_a_retried_message_id_is_routed_once(client, config):
    """Infobip retries a forward it saw no 2xx for: the retry is answered, not routed."""
    for _ in range(2):
        assert forward(client, {**MO, "text": "hello"}).status_code == 200
    assert Message.objects.filter(direction="in").count() == 1


def _without(name):
    return {key: value for key, value in MO.items() if key != name}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (b"{}", "results is required"),
        (b'{"results": {}}', "results must be a list"),
        (json.dumps({"results": [MO, "x"]}).encode(), "results[1] must be a JSON object"),
        (json.dumps({"results": [MO, _without("from")]}).encode(), "results[1].from is required"),
        (json.dumps({"results": [{**MO, "from": " "}]}).encode(), "results[0].from is required"),
        (json.dumps({"results": [{**MO, "from": 385}]}).encode(),
         "results[0].from must be a string, not int"),
        (json.dumps({"results": [MO, _without("text")]}).encode(),
         "results[1].text is required (it may be empty)"),
        (json.dumps({"results": [{**MO, "text": None}]}).encode(), "results[0].text is required"),
        (json.dumps({"results": [{**MO, "messageId": 5}]}).encode(),
         "results[0].messageId must be a string, not int"),
    ],
)
@pytest.mark.django_db
def test_a_bad_forward_is_400_naming_the_field_and_nothing_is_written(
    client, config, gateway, body, error
):
    response = client.post(WEBHOOK, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert not Message.objects.exists() and not Connection.objects.exists()
    assert gateway.requests == []


@pytest.mark.parametrize("path", ["/backend/infobip/", "/backend/infobip/?token=wrong",
                                  "/backend/infobip/?token=", "/backend/infobip/status/",
                                  "/backend/infobip/status/?token=s3cret"])
@pytest.mark.django_db
def test_a_missing_or_wrong_token_is_403_and_nothing_is_written(client, config, path):
    response = forward(client, MO, path=path)
    assert (response.status_code, response.json()) == (403, {"error": "token is missing or wrong"})
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_the_token_is_checked_before_the_body_is_read(client, config):
    """A caller without the token learns nothing of the format, not even that it is JSON."""
    response = client.post("/backend/infobip/", b"{not json", content_type="application/json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_without_a_token_configured_every_request_is_refused(client, config, settings):
    settings.INSTALLED_BACKENDS = {"infobip": {**config, "token": ""}}
    response = forward(client, MO, path="/backend/infobip/?token=")
    assert response.status_code == 403 and "token is not set" in response.json()["error"]
    assert not Message.objects.exists()


def test_get_is_405(client, config):
    assert client.get(WEBHOOK).status_code == 405


# Outbound messages.
@pytest.mark.asyncio
async def test_the_request_is_the_one_infobips_library_makes(gateway):
    """Path, key and body, field by field, against infobip_api_client's for the same send."""
    gateway.answer(200, taken("7"), headers=JSON)
    gateway.answer(200, taken("7"), headers=JSON)
    api = SmsApi(ApiClient(Configuration(host=gateway.url, api_key=KEY)))
    api.send_sms_messages(SmsRequest(messages=[SmsMessage(
        sender=SENDER, destinations=[SmsDestination(to="255700000001", message_id="7")],
        content=SmsMessageContent(SmsTextContent(text="Karibu ☀️")))]))
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url + "/",
                             sender=SENDER, token=TOKEN)
    outcomes = await backend.send([outgoing(7, text="Karibu ☀️")])
    assert outcomes == [Outcome(external_id="7")]
    theirs, ours = gateway.requests
    assert (ours.method, ours.path, ours.query) == (theirs.method, theirs.path, theirs.query)
    assert theirs.path == "/sms/3/messages"
    for header in ("Authorization", "Accept"):
        assert ours.headers[header] == theirs.headers[header], header
    assert ours.headers["Content-Type"].split(";")[0] == theirs.headers["Content-Type"]
    assert ours.json() == theirs.json()


@pytest.mark.asyncio
async def test_without_a_sender_infobip_picks_one(gateway):
    accepts(gateway, "7")
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url, token=TOKEN)
    await backend.send([outgoing(7)])
    assert "sender" not in gateway.requests[0].json()["messages"][0]


@pytest.mark.asyncio
async def test_several_messages_go_in_one_request_each_with_its_outcome(gateway):
    """Taken, refused, refused for a do-not-disturb number, and missing from the answer."""
    gateway.answer(200, json.dumps({"bulkId": "b", "messages": [
        {"messageId": "1", "status": {"groupName": "PENDING", "name": "PENDING_ACCEPTED"}},
        {"messageId": "2", "status": {"groupName": "REJECTED", "name": "REJECTED_DESTINATION",
                                      "description": "Destination rejected"}},
        {"messageId": "3", "status": {"groupName": "REJECTED", "name": "REJECTED_DND"}},
        {"messageId": "5", "status": {"groupName": "ACCEPTED", "name": "MESSAGE_ACCEPTED"}},
    ]}), headers=JSON)
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url, sender=SENDER,
                             token=TOKEN)
    outcomes = await backend.send([outgoing(i, to=f"+25570000000{i}") for i in range(1, 6)])
    (seen,) = gateway.requests
    assert [entry["destinations"] for entry in seen.json()["messages"]] == [
        [{"to": f"25570000000{i}", "messageId": str(i)}] for i in range(1, 6)]
    assert [(o.sent, o.temporary, o.opted_out, o.external_id) for o in outcomes] == [
        (True, False, False, "1"), (False, False, False, None), (False, False, True, None),
        (False, False, False, None), (True, False, False, "5")]
    assert outcomes[1].error == ("Infobip REJECTED: REJECTED_DESTINATION "
                                 "(Destination rejected)")
    assert outcomes[3].error == "Infobip's answer has no entry for messageId 4"


@pytest.mark.asyncio
async def test_at_most_100_messages_go_in_one_request(gateway):
    every_id = taken(*(str(i) for i in range(1, 102)))
    gateway.answer(200, every_id, headers=JSON, times=2)
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url, token=TOKEN)
    outcomes = await backend.send([outgoing(i) for i in range(1, 102)])
    assert sorted(len(seen.json()["messages"]) for seen in gateway.requests) == [1, 100]
    assert [o.external_id for o in outcomes] == [str(i) for i in range(1, 102)]


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.asyncio
async def test_a_busy_or_failing_infobip_is_a_temporary_failure(gateway, status):
    gateway.answer(status, json.dumps({"errorCode": "E500", "description": "Try again."}),
                   headers=JSON)
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url, token=TOKEN)
    outcomes = await backend.send([outgoing(1), outgoing(2)])
    assert [(o.sent, o.temporary) for o in outcomes] == [(False, True), (False, True)]
    assert outcomes[0].error.endswith(f"/sms/3/messages answered {status}: "
                                      "Infobip E500: Try again.")


@pytest.mark.parametrize(("body", "detail"), [
    ({"errorCode": "E401", "description": "Invalid login details."},
     "Infobip E401: Invalid login details."),
    ({"requestError": {"serviceException": {"messageId": "UNAUTHORIZED",
                                            "text": "Invalid login details"}}},
     "Infobip UNAUTHORIZED: Invalid login details"),
])
@pytest.mark.asyncio
async def test_a_refused_request_is_permanent_and_keeps_infobips_words(gateway, body, detail):
    gateway.answer(401, json.dumps(body), headers=JSON)
    backend = InfobipBackend("infobip", api_key="wrong", base_url=gateway.url, token=TOKEN)
    (outcome,) = await backend.send([outgoing(1)])
    assert (outcome.sent, outcome.temporary) == (False, False)
    assert outcome.error.endswith(f"answered 401: {detail}")
    assert "wrong" not in outcome.error


@pytest.mark.asyncio
async def test_a_success_without_infobips_messages_is_not_taken_for_sent(gateway):
    """A 200 from something that is not Infobip (a wrong base_url, a portal) proves nothing."""
    gateway.answer(200, "<html>Welcome</html>", headers={"Content-Type": "text/html"})
    backend = InfobipBackend("infobip", api_key=KEY, base_url=gateway.url, token=TOKEN)
    (outcome,) = await backend.send([outgoing(1)])
    assert not outcome.sent and not outcome.temporary
    assert "answered 200 without Infobip's messages" in outcome.error


def send_through_api(gateway, capture):
    """smsrouter.send() to one number, Infobip taking it under the id it was stored with:
    the send runs on commit, so the answer can name that id before it is made."""
    with capture() as callbacks:
        (msg,) = smsrouter.send("hi", "+255700000001", backend="infobip")
    accepts(gateway, str(msg.id))
    for callback in callbacks:
        callback()
    return Message.objects.get(pk=msg.id)


@pytest.mark.django_db
def test_a_send_through_the_api_keeps_the_message_id_as_external_id(
    config, gateway, django_capture_on_commit_callbacks
):
    msg = send_through_api(gateway, django_capture_on_commit_callbacks)
    assert (msg.status, msg.external_id, msg.error) == ("sent", str(msg.id), "")
    (seen,) = gateway.requests
    (entry,) = seen.json()["messages"]
    assert entry["destinations"] == [{"to": "255700000001", "messageId": str(msg.id)}]


# Delivery reports.
@pytest.fixture
def sent(config, gateway, django_capture_on_commit_callbacks):
    """A message Infobip took, its status reset to "queued" as if just stored."""
    msg = send_through_api(gateway, django_capture_on_commit_callbacks)
    Message.objects.filter(pk=msg.id).update(status="queued")
    return msg


def report(client, msg, group, name="", error=None, path=STATUS):
    result = {"bulkId": "b", "messageId": str(msg.id), "to": "255700000001",
              "sentAt": "2026-12-02T14:00:00.000+0000", "doneAt": "2026-12-02T14:00:05.000+0000",
              "messageCount": 1, "price": {"pricePerMessage": 0.01, "currency": "EUR"},
              "status": {"groupId": 0, "groupName": group, "id": 0, "name": name,
                         "description": ""},
              "error": error or {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
                                 "description": "No Error", "permanent": False}}
    return client.post(path, json.dumps({"results": [result]}), content_type="application/json")


def stored(msg):
    return Message.objects.filter(pk=msg.id).values_list("status", "error").get()


ABSENT = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER",
          "description": "Absent Subscriber", "permanent": False}


@pytest.mark.parametrize(
    ("group", "name", "error", "status", "reason"),
    [
        ("PENDING", "PENDING_ENROUTE", None, "sent", ""),
        ("DELIVERED", "DELIVERED_TO_HANDSET", None, "delivered", ""),
        ("UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", ABSENT, "failed",
         "Infobip UNDELIVERABLE: UNDELIVERABLE_NOT_DELIVERED "
         "(EC_ABSENT_SUBSCRIBER: Absent Subscriber)"),
        ("EXPIRED", "EXPIRED_EXPIRED", None, "failed", "Infobip EXPIRED: EXPIRED_EXPIRED"),
        ("REJECTED", "REJECTED_DND", None, "failed", "Infobip REJECTED: REJECTED_DND"),
    ],
)
@pytest.mark.django_db
def test_a_delivery_report_moves_the_message(client, sent, group, name, error, status, reason):
    response = report(client, sent, group, name, error)
    assert response.status_code == 200
    assert stored(sent) == (status, reason)


@pytest.mark.parametrize(("name", "opted_out"), [
    ("REJECTED_DND", True), ("REJECTED_NETWORK", False)])
@pytest.mark.django_db
def test_a_report_that_the_number_is_on_dnd_opts_it_out(client, sent, name, opted_out):
    """As a REJECTED_DND answer to the send does (Infobip's do-not-disturb list)."""
    assert report(client, sent, "REJECTED", name).status_code == 200
    assert stored(sent)[0] == "failed"
    assert (Connection.objects.get().opted_out_at is not None) is opted_out


@pytest.mark.django_db
def test_reports_out_of_order_never_move_a_message_back(client, sent):
    assert report(client, sent, "DELIVERED", "DELIVERED_TO_HANDSET").status_code == 200
    assert report(client, sent, "PENDING", "PENDING_ENROUTE").status_code == 200
    assert report(client, sent, "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED").status_code == 200
    assert stored(sent) == ("delivered", "")


def test_each_result_of_a_report_is_a_status_report(config):
    body = {"results": [
        {"messageId": "1", "status": {"groupName": "DELIVERED"}},
        {"messageId": "2", "status": {"groupName": "REJECTED", "name": "REJECTED_NETWORK"}},
    ]}
    request = RequestFactory().post(STATUS, json.dumps(body), content_type="application/json")
    assert backends["infobip"].parse_status(request) == [
        StatusReport("delivered", "results[0].messageId", external_id="1"),
        StatusReport("failed", "results[1].messageId", external_id="2",
                     error="Infobip REJECTED: REJECTED_NETWORK"),
    ]


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ({"status": {"groupName": "DELIVERED"}}, "results[0].messageId is required"),
        ({"messageId": "", "status": {"groupName": "DELIVERED"}},
         "results[0].messageId is required"),
        ({"messageId": "1"}, "results[0].status must be a JSON object"),
        ({"messageId": "1", "status": {"groupName": "READ"}},
         "results[0].status.groupName 'READ' is not a status group"),
        ({"messageId": "1", "status": {"groupName": ["DELIVERED"]}},
         "results[0].status.groupName \"['DELIVERED']\" is not a status group"),
    ],
)
@pytest.mark.django_db
def test_a_bad_report_is_400_naming_the_field_and_changes_nothing(client, sent, result, error):
    response = client.post(STATUS, json.dumps({"results": [result]}),
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert Message.objects.get(pk=sent.id).status == "queued"


@pytest.mark.django_db
def test_a_report_for_an_unknown_message_is_400_and_changes_nothing(client, sent):
    body = {"results": [{"messageId": "nobody", "status": {"groupName": "DELIVERED"}}]}
    response = client.post(STATUS, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("results[0].messageId does not match a message")
    assert Message.objects.get(pk=sent.id).status == "queued"


# System checks.
def check(settings, **options):
    settings.INSTALLED_BACKENDS = {"infobip": {"ENGINE": ENGINE, **options}}
    return checks.check_backends()


def ids(errors):
    return [error.id for error in errors]


GOOD = {"api_key": KEY, "base_url": "https://xxxxx.api.infobip.com", "token": TOKEN}


@pytest.mark.parametrize("base_url", ["https://xxxxx.api.infobip.com",
                                      "https://xxxxx.api.infobip.com/",
                                      "http://127.0.0.1:8080"])
def test_a_complete_configuration_passes(settings, base_url):
    assert check(settings, **{**GOOD, "base_url": base_url}, sender=SENDER) == []


def test_api_key_base_url_and_token_are_required(settings):
    errors = check(settings, sender=SENDER)
    assert [e.msg for e in errors] == [f"Backend 'infobip' needs the option {option!r}."
                                       for option in ("api_key", "base_url", "token")]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"base_url": "xxxxx.api.infobip.com"}, "smsrouter.E110"),
        ({"base_url": "http://xxxxx.api.infobip.com"}, "smsrouter.E110"),
        ({"base_url": "https://xxxxx.api.infobip.com:x"}, "smsrouter.E110"),
        ({"base_url": "https://xxxxx.api.infobip.com/sms/3/messages"}, "smsrouter.E111"),
        ({"base_url": "https://xxxxx.api.infobip.com/?a=1"}, "smsrouter.E111"),
        ({"api_key": ""}, "smsrouter.E112"),
        ({"token": ""}, "smsrouter.E113"),
        ({"sender": ""}, "smsrouter.E114"),
        ({"token": 5}, "smsrouter.E009"),
        ({"notify_url": "https://x"}, "smsrouter.E008"),
    ],
)
def test_wrong_values(settings, options, expected):
    assert ids(check(settings, **{**GOOD, **options})) == [expected]


def test_a_base_url_with_the_send_path_says_what_to_give(settings):
    (error,) = check(settings, **{**GOOD, "base_url": "https://x.api.infobip.com/sms/3/messages"})
    assert "adds /sms/3/messages itself" in error.hint
