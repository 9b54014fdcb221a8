"""KannelBackend: Kannel's get-url in, sendsms out, delivery reports back; and its checks.

Inbound requests are written as Kannel 1.4.5 sends them (captured from a real smsbox):
`%b` is the message's bytes percent-encoded, so a UCS-2 SMS arrives as UTF-16BE bytes.
Outbound requests go to the `gateway` fixture, a real HTTP server in Kannel's place.
"""

import socket
from urllib.parse import quote_from_bytes

import pytest
from asgiref.sync import async_to_sync
from django.urls import clear_script_prefix, set_script_prefix

import smsrouter
from smsrouter import checks
from smsrouter.backends import backends
from smsrouter.backends.base import SENT, Outcome
from smsrouter.backends.kannel import MAX_RECIPIENTS, dlr_signature
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message
from tests.gateway import Answer

pytestmark = pytest.mark.django_db

ENGINE = "smsrouter.backends.kannel.KannelBackend"
PHONE = "+255700000001"
ACCEPTED = Answer(202, "0: Accepted for delivery")


@pytest.fixture
def kannel(settings, gateway):
    """A `kannel` backend whose sendsms is the gateway; call it to set more options."""

    def configure(**options):
        settings.INSTALLED_BACKENDS = {"kannel": {
            "ENGINE": ENGINE,
            "sendsms_url": f"{gateway.url}/cgi-bin/sendsms",
            "sendsms_params": {"username": "u", "password": "p", "from": "5555"},
            **options,
        }}

    configure()
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    gateway.default = ACCEPTED
    return configure


def get_url(query):
    return f"/backend/kannel/?id=%2B255700000001&{query}"


def ucs2(text):
    """`text` as Kannel's %a carries a UCS-2 SMS: UTF-16BE bytes, percent-encoded."""
    return quote_from_bytes(text.encode("utf-16-be"))


def rows():
    return list(Message.objects.order_by("pk").values_list("direction", "text", "status"))


def send(*pairs):
    """The `kannel` backend's send() of (text, number) pairs, with no database: its outcomes."""
    row = Backend(name="kannel")
    messages = [OutgoingMessage(text, Connection(backend=row, identity=number))
                for text, number in pairs]
    return async_to_sync(backends["kannel"].send)(messages)


# Inbound: the sms-service get-url.


def test_a_message_is_routed_and_kannel_gets_an_empty_answer(
    client, kannel, gateway, django_capture_on_commit_callbacks
):
    """A non-empty body would go back to the phone as an SMS; the reply leaves once committed."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(get_url("text=echo+hello&charset=UTF-8&coding=0"))
    assert (response.status_code, response.content) == (200, b"")
    assert rows() == [("in", "echo hello", "handled"), ("out", "hello", "sent")]
    assert Message.objects.filter(direction="in").get().connection.identity == PHONE
    (sent,) = gateway.requests
    assert (sent.method, sent.path) == ("GET", "/cgi-bin/sendsms")


@pytest.mark.parametrize(
    ("query", "text"),
    [
        # Kannel leaves printable bytes unescaped: 0x30 is "0", 0x4B "K".
        ("text=%120%12K%12%5D&charset=UTF-16BE&coding=2", "\u1230\u124b\u125d"),
        ("text=%120%12%0B%12%1D&charset=UTF-16BE&coding=2", "ሰላም"),
        ("text=%D8%3D%DE%00&charset=UTF-16BE&coding=2", "😀"),  # a surrogate pair
        (f"text={ucs2('Selam ሰላም 😀')}&charset=UTF-16BE&coding=2", "Selam ሰላም 😀"),
        ("text=caf%C3%A9+%E2%82%AC&charset=UTF-8&coding=0", "café €"),
        ("text=caf%E9&charset=ISO-8859-1&coding=0", "café"),
        ("text=caf%E9&charset=8-BIT&coding=1", "café"),  # 8-bit data: one byte, one char
        (f"text={ucs2('ሰላም')}&coding=2", "ሰላም"),  # without %C: Kannel's UTF-16BE
        ("text=caf%C3%A9", "café"),  # without %C and %c: UTF-8
    ],
)
def test_the_text_is_decoded_from_its_bytes_in_the_charset_kannel_names(client, kannel, query,
                                                                        text):
    assert client.get(get_url(query)).status_code == 200
    assert Message.objects.get().text == text


def test_a_ucs2_echo_goes_back_as_ucs2(client, kannel, gateway, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(get_url(f"text={ucs2('echo ሰላም')}&charset=UTF-16BE&coding=2"))
    assert response.status_code == 200
    assert rows() == [("in", "echo ሰላም", "handled"), ("out", "ሰላም", "sent")]
    (sent,) = gateway.requests
    assert (sent.param("text"), sent.param("coding"), sent.param("charset")) == (
        "ሰላም", "2", "UTF-8")


def test_a_post_form_is_read_like_the_query_string(client, kannel):
    response = client.post("/backend/kannel/", f"id=%2B255700000001&text={ucs2('ሰላም')}"
                           "&charset=UTF-16BE&coding=2",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert Message.objects.get().text == "ሰላም"


SQUEEZED = " (Kannel's %a squeezes whitespace bytes out of UCS-2: pass text=%b)"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/backend/kannel/?text=hi", "id is required (the get-url must pass id=%p)"),
        ("/backend/kannel/?id=+&text=hi", "id is required (the get-url must pass id=%p)"),
        (get_url("charset=UTF-8"),
         "text is required, though it may be empty (the get-url must pass text=%b)"),
        (get_url("text=hi&charset=KLINGON"),
         "charset 'KLINGON' is not a charset this server knows"),
        (get_url("text=%12&charset=UTF-16BE&coding=2"), f"text is not valid UTF-16BE: "
         f"truncated data{SQUEEZED}"),
        # What a get-url with %a made of "echo ሰላም, 你好 😀\t’x" (captured): spaces for
        # the whitespace bytes 0x0B and 0x09, then one byte fewer where two were squeezed.
        (get_url("text=%00e%00c%00h%00o%00+%120%12+%12%1D%00%2C%00+O%60Y%7D%00+%D8%3D%DE%00"
                 "%00+%19%00x&charset=UTF-16BE&coding=2"),
         f"text is not valid UTF-16BE: truncated data{SQUEEZED}"),
    ],
)
def test_a_bad_request_is_400_naming_the_field_and_nothing_is_written(client, kannel, url, error):
    response = client.get(url)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert Message.objects.count() == 0


@pytest.mark.parametrize(("charset", "error"), [
    ("undefined", "charset 'undefined' is not a text encoding"),  # UnicodeError, not ...Decode...
    ("idna", "charset 'idna' is not a text encoding"),
    ("punycode", "charset 'punycode' is not a text encoding"),
    ("unicode_escape", "charset 'unicode_escape' is not a text encoding"),  # warns on %5C%5D
    ("raw_unicode_escape", "charset 'raw_unicode_escape' is not a text encoding"),
    ("base64", "charset 'base64' is not a text encoding"),  # codecs of bytes to bytes
    ("hex", "charset 'hex' is not a text encoding"),
    ("zlib", "charset 'zlib' is not a text encoding"),
    ("rot13", "charset 'rot13' is not a text encoding"),  # of str to str
    ("utf%00", "charset 'utf\\x00' is not a charset this server knows"),  # ValueError
    ("x" * 300, f"charset {'x' * 40!r} is not a charset this server knows"),
])
def test_a_charset_that_is_no_text_encoding_is_400_naming_it(client, kannel, charset, error):
    """Every codec Python has was tried on hostile bytes: only these raise otherwise than
    with UnicodeDecodeError, and each is refused as the charset."""
    response = client.get(get_url(f"text=%5C%5D%FF&charset={charset}"))
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert Message.objects.count() == 0


@pytest.mark.parametrize(("text", "charset", "original"), [
    ("%00", "UTF-8", [0]),
    ("%00%00", "UTF-16BE", [0]),
    ("%D8%3D%00a", "UTF-16BE", [0xD83D, "a"]),  # half an emoji, split between two parts
])
def test_a_text_with_nul_or_a_lone_surrogate_is_stored_and_the_original_kept(
        client, kannel, text, charset, original):
    """Kannel's %b passes NUL (GSM-7's '@', as some SMSCs send it), and a UCS-2 part may
    end in half a surrogate pair: the text is never refused for what a database cannot
    store."""
    assert client.get(get_url(f"text={text}&charset={charset}")).status_code == 200
    stored = Message.objects.get(direction="in")
    assert stored.text == "".join("\ufffd" if isinstance(part, int) else part
                                  for part in original)
    assert stored.fields == {"original_text": original}


def test_a_query_string_of_too_many_fields_is_400(client, kannel):
    response = client.get(get_url("text=hi&" + "x=1&" * 1000))
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["error"]
    assert not Message.objects.exists()


@pytest.mark.parametrize(("url", "error"), [
    (get_url("text=hi&sms_id=" + "9" * 256),
     "external_id is 256 characters long; at most 255 can be stored (Message.external_id)"),
    ("/backend/kannel/?text=hi&id=" + "1" * 101,
     "identity is 101 characters long; at most 100 can be stored (Connection.identity)"),
    ("/backend/kannel/?text=hi&id=%2B1%00",
     "identity contains NUL (U+0000) at position 2, which no database can store"),
])
def test_what_no_database_can_store_is_400_naming_it(client, kannel, url, error):
    response = client.get(url)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not Message.objects.exists() and not Connection.objects.exists()


def test_a_posted_form_of_too_many_fields_is_400(client, kannel):
    response = client.post(get_url("text=hi"), "x=1&" * 1001,
                           content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()) == (400, {
        "error": "body has more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)"})


@pytest.mark.parametrize("token", [None, "", "guess"])
def test_a_missing_or_wrong_token_is_403_and_nothing_is_written_or_logged(
    client, kannel, caplog, token
):
    kannel(token="s3cret-token")
    query = "" if token is None else f"&token={token}"
    response = client.get(get_url(f"text=echo+hi{query}"))
    assert (response.status_code, response.json()) == (403, {"error": "token is missing or wrong"})
    assert Message.objects.count() == 0
    assert "s3cret" not in caplog.text and "guess" not in caplog.text


def test_the_right_token_is_let_in(client, kannel, django_capture_on_commit_callbacks):
    kannel(token="s3cret-token")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(get_url("text=echo+hi&token=s3cret-token")).status_code == 200
    assert rows() == [("in", "echo hi", "handled"), ("out", "hi", "sent")]


def test_kannels_sms_id_makes_a_retried_request_route_once(
    client, kannel, gateway, django_capture_on_commit_callbacks
):
    """Kannel retries a get-url it got no answer to; %I is the same each time."""
    url = get_url("text=echo+hi&charset=UTF-8&coding=0&sms_id=edb6a736-f941-4a1f-a4e3-e0aaefc553a9")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(url).status_code == 200
    assert rows() == [("in", "echo hi", "handled"), ("out", "hi", "sent")]
    assert Message.objects.get(direction="in").external_id == "edb6a736-f941-4a1f-a4e3-e0aaefc553a9"
    assert len(gateway.requests) == 1


def test_other_methods_are_405(client, kannel):
    assert client.put(get_url("text=hi")).status_code == 405
    assert Message.objects.count() == 0


# Outbound: sendsms.


def test_a_gsm_text_goes_out_as_coding_0_with_the_sendsms_params(
    kannel, gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello {€}", PHONE, backend="kannel")
    assert (msg.status, msg.error) == ("sent", "")
    (sent,) = gateway.requests
    assert {name: values for name, values in sent.query.items()} == {
        "username": ["u"], "password": ["p"], "from": ["5555"], "to": [PHONE],
        "text": ["hello {€}"], "charset": ["UTF-8"], "coding": ["0"]}


@pytest.mark.parametrize("text", ["ሰላም", "I’m here", "😀", "Привет"])
def test_a_text_gsm7_cannot_carry_goes_out_as_ucs2_in_utf8(
    kannel, gateway, text, django_capture_on_commit_callbacks
):
    """Kannel converts the UTF-8 text to UCS-2 for the SMSC."""
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send(text, PHONE, backend="kannel")
    (sent,) = gateway.requests
    assert (sent.param("text"), sent.param("charset"), sent.param("coding")) == (text, "UTF-8", "2")


def test_the_coding_option_forces_one_coding(kannel, gateway, django_capture_on_commit_callbacks):
    kannel(coding=2)
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hello", PHONE, backend="kannel")
    assert gateway.requests[0].param("coding") == "2"


def test_the_charset_option_sends_the_text_in_that_charset(
    kannel, gateway, django_capture_on_commit_callbacks
):
    kannel(charset="UTF-16BE")
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("ሰላም", PHONE, backend="kannel")
    (sent,) = gateway.requests
    # UTF-16BE bytes of Ethiopic letters are all ASCII, so the gateway's UTF-8 parse keeps them.
    assert sent.param("text") == "ሰላም".encode("utf-16-be").decode("ascii")
    assert (sent.param("charset"), sent.param("coding")) == ("UTF-16BE", "2")


def test_a_text_the_charset_cannot_carry_fails_without_a_request(
    kannel, gateway, django_capture_on_commit_callbacks
):
    kannel(charset="ISO-8859-1")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("ሰላም", PHONE, backend="kannel")
    assert msg.status == "failed"
    assert msg.error.startswith("the text cannot be sent in charset ISO-8859-1 (option 'charset')")
    assert gateway.requests == []


def test_encode_errors_says_what_to_do_with_what_the_charset_cannot_carry(
    kannel, gateway, django_capture_on_commit_callbacks
):
    """RapidSMS's `"charset": "ascii", "encode_errors": "ignore"` keeps working, lossy as it was."""
    kannel(charset="ascii", encode_errors="ignore", coding=0)
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("Selam ሰላም", PHONE, backend="kannel")
    assert msg.status == "sent"
    assert (gateway.requests[0].param("text"), gateway.requests[0].param("charset")) == (
        "Selam ", "ascii")


def test_recipients_of_one_text_share_a_request(
    kannel, gateway, django_capture_on_commit_callbacks
):
    """`to` takes several numbers separated by spaces."""
    numbers = ["+255700000001", "+255700000002", "+255700000003"]
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("meeting at 10", numbers, backend="kannel")
    assert [m.status for m in sent] == ["sent"] * 3
    (request,) = gateway.requests
    assert request.param("to") == " ".join(numbers)


def test_different_texts_are_different_requests(kannel, gateway):
    assert send(("a", "+1"), ("b", "+2"), ("a", "+3")) == [SENT] * 3
    assert sorted((r.param("text"), r.param("to")) for r in gateway.requests) == [
        ("a", "+1 +3"), ("b", "+2")]


def test_many_recipients_are_split_into_requests_of_max_recipients(
    kannel, gateway, django_capture_on_commit_callbacks
):
    numbers = [f"+2557{n:08}" for n in range(MAX_RECIPIENTS + 1)]
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hello all", numbers, backend="kannel")
    assert sorted(len(r.param("to").split()) for r in gateway.requests) == [1, MAX_RECIPIENTS]


def test_queued_for_later_delivery_is_sent(kannel, gateway, django_capture_on_commit_callbacks):
    gateway.answer(202, "3: Queued for later delivery")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    assert msg.status == "sent"


def attempt(msg):
    """What the sender recorded of the message's attempts: (status, attempts, retry due)."""
    row = Message.objects.get(pk=msg.id)
    assert (msg.status, msg.error) == (row.status, row.error)
    return row.status, row.attempts, row.due_at is not None


@pytest.mark.parametrize(
    ("status", "body", "recorded"),
    [
        (503, "Temporal failure, try again later.", ("queued", 1, True)),  # temporary
        (400, "Sender missing and no global set, rejected", ("failed", 1, False)),
        (403, "Authorization failed for sendsms", ("failed", 1, False)),
    ],
)
def test_a_refusal_keeps_kannels_answer_and_only_a_temporary_one_is_retried(
    kannel, gateway, django_capture_on_commit_callbacks, status, body, recorded
):
    gateway.answer(status, body)
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    assert attempt(msg) == recorded
    assert msg.error == f"GET {gateway.url}/cgi-bin/sendsms answered {status}: {body}"
    assert "password" not in msg.error


@pytest.mark.parametrize(
    ("max_attempts", "recorded"), [(8, ("queued", 1, True)), (1, ("failed", 1, False))])
def test_an_unreachable_kannel_is_retried_until_the_last_attempt(
    kannel, settings, django_capture_on_commit_callbacks, max_attempts, recorded
):
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = max_attempts
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kannel(sendsms_url=f"http://127.0.0.1:{port}/cgi-bin/sendsms")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    assert attempt(msg) == recorded
    assert msg.error.startswith(f"GET http://127.0.0.1:{port}/cgi-bin/sendsms failed:")


def test_a_failed_request_fails_only_its_own_messages(kannel, gateway):
    """The outcomes come in the messages' order, though the requests go by text."""
    kannel(concurrency=1)  # the requests in order: "a" (+1 +3), then "b"
    gateway.answer(202, "0: Accepted for delivery")
    gateway.answer(503, "Temporal failure, try again later.")
    busy = Outcome(error=f"GET {gateway.url}/cgi-bin/sendsms answered 503: "
                   "Temporal failure, try again later.", temporary=True)
    assert send(("a", "+1"), ("b", "+2"), ("a", "+3")) == [SENT, busy, SENT]
    assert [r.param("to") for r in gateway.requests] == ["+1 +3", "+2"]


@pytest.mark.parametrize(
    ("status", "body", "temporary"),
    [
        (503, "Temporal failure, try again later.", True),
        (400, "Sender missing and no global set, rejected", False),
        (403, "Authorization failed for sendsms", False),
    ],
)
def test_a_refusal_is_an_outcome_with_kannels_answer(kannel, gateway, status, body, temporary):
    gateway.answer(status, body)
    assert send(("hello", PHONE)) == [Outcome(
        error=f"GET {gateway.url}/cgi-bin/sendsms answered {status}: {body}", temporary=temporary)]


def test_a_text_the_charset_cannot_carry_is_a_permanent_outcome(kannel, gateway):
    kannel(charset="ISO-8859-1")
    (outcome,) = send(("ሰላም", PHONE))
    assert not outcome.sent and not outcome.temporary
    assert outcome.error.startswith(
        "the text cannot be sent in charset ISO-8859-1 (option 'charset')")
    assert gateway.requests == []


# Delivery reports: the dlr-url.


def test_with_delivery_reports_each_message_has_its_own_request_and_dlr_url(
    kannel, gateway, django_capture_on_commit_callbacks
):
    kannel(delivery_report_url="https://sms.example.org")
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("hello", ["+1", "+2"], backend="kannel")
    requests = sorted(gateway.requests, key=lambda r: r.param("to"))
    assert [(r.param("to"), r.param("dlr-mask")) for r in requests] == [("+1", "31"), ("+2", "31")]
    assert [r.param("dlr-url") for r in requests] == [
        f"https://sms.example.org/backend/kannel/status/?message_id={m.id}&status=%d&answer=%A"
        f"&sig={dlr_signature('kannel', m.id)}" for m in sent]


def test_the_dlr_url_carries_the_token_and_the_sites_own_path(
    kannel, gateway, django_capture_on_commit_callbacks
):
    kannel(delivery_report_url="https://example.org/sms/", token="s3cret/+")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    assert gateway.requests[0].param("dlr-url") == (
        f"https://example.org/sms/backend/kannel/status/?message_id={msg.id}"
        f"&status=%d&answer=%A&sig={dlr_signature('kannel', msg.id)}&token=s3cret%2F%2B")


def test_the_dlr_url_ignores_the_script_prefix_of_the_running_request(
    kannel, gateway, django_capture_on_commit_callbacks
):
    kannel(delivery_report_url="https://example.org/sms")
    set_script_prefix("/mounted/")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    finally:
        clear_script_prefix()
    assert gateway.requests[0].param("dlr-url").startswith(
        f"https://example.org/sms/backend/kannel/status/?message_id={msg.id}&")


@pytest.fixture
def sent(kannel, django_capture_on_commit_callbacks):
    """A message Kannel accepted, with delivery reports on."""
    kannel(delivery_report_url="https://sms.example.org")
    with django_capture_on_commit_callbacks(execute=True):
        (msg,) = smsrouter.send("hello", PHONE, backend="kannel")
    return Message.objects.get(pk=msg.id)


def report(client, message_id, status, answer="", **extra):
    query = {"message_id": message_id, "status": status, "answer": answer,
             "sig": dlr_signature("kannel", message_id), **extra}
    return client.get("/backend/kannel/status/", query)


def outcome(message):
    message.refresh_from_db()
    return message.status, message.error


@pytest.mark.parametrize(
    ("kind", "answer", "expected"),
    [
        (1, "", ("delivered", "")),
        (2, "NACK/0x00000045/Submit failed",
         ("failed", "undeliverable: NACK/0x00000045/Submit failed")),
        (2, "", ("failed", "undeliverable")),
        (4, "", ("sent", "")),
        (8, "ACK/", ("sent", "")),
        (16, "NACK/0x0000000b/Invalid Destination Address",
         ("failed", "rejected by the SMSC: NACK/0x0000000b/Invalid Destination Address")),
    ],
)
def test_each_report_type_sets_its_status(client, sent, kind, answer, expected):
    response = report(client, sent.pk, kind, answer)
    assert (response.status_code, response.content) == (200, b"")
    assert outcome(sent) == expected


def test_a_status_only_moves_forward_and_reports_repeat_harmlessly(client, sent):
    """Kannel's reports come out of order (8 after 1) and may come twice."""
    for kind in (1, 8, 1, 4):
        assert report(client, sent.pk, kind).status_code == 200
    assert outcome(sent) == ("delivered", "")


def test_a_report_may_be_posted(client, sent):
    signed = f"message_id={sent.pk}&status=1&sig={dlr_signature('kannel', sent.pk)}"
    response = client.post("/backend/kannel/status/", signed,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert outcome(sent) == ("delivered", "")


BAD_ID = "message_id must be the number smsrouter put in the dlr-url"
BAD_STATUS = "is not a Kannel report type (1, 2, 4, 8, 16); pass status=%d"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"status": 1}, BAD_ID),
        ({"message_id": "abc", "status": 1}, BAD_ID),
        ({"message_id": "-1", "status": 1}, BAD_ID),
        ({"message_id": "9" * 30, "status": 1}, BAD_ID),  # more than a primary key holds
        ({"message_id": "999999", "status": 1},
         "message_id does not match a message sent through 'kannel'"),
        ({"message_id": "SENT", "status": 3},
         f"status '3' {BAD_STATUS}"),
        ({"message_id": "SENT", "status": "%d"},  # Kannel did not fill it in
         f"status '%d' {BAD_STATUS}"),
        ({"message_id": "SENT"}, f"status '' {BAD_STATUS}"),
    ],
)
def test_a_bad_report_is_400_naming_the_field_and_changes_nothing(client, sent, query, error):
    if query.get("message_id") == "SENT":
        query["message_id"] = sent.pk
    if str(query.get("message_id", "")).isdigit():
        query["sig"] = dlr_signature("kannel", int(query["message_id"]))
    response = client.get("/backend/kannel/status/", query)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert outcome(sent) == ("sent", "")


def test_a_report_on_an_incoming_message_is_400(client, kannel, sent):
    incoming = smsrouter.incoming("kannel", PHONE, "no reply")
    response = report(client, incoming.id, 1)
    assert response.status_code == 400
    assert Message.objects.get(pk=incoming.id).status == "handled"


def test_reports_need_the_token_too(client, sent, kannel):
    kannel(delivery_report_url="https://sms.example.org", token="s3cret-token")
    assert report(client, sent.pk, 1).status_code == 403
    assert report(client, sent.pk, 1, token="guess").status_code == 403
    assert outcome(sent) == ("sent", "")
    assert report(client, sent.pk, 1, token="s3cret-token").status_code == 200
    assert outcome(sent) == ("delivered", "")


# System checks.


def kannel_errors(settings, **options):
    settings.INSTALLED_BACKENDS = {"kannel": {"ENGINE": ENGINE, **options}}
    return checks.check_backends()


def test_a_full_rapidsms_configuration_passes(settings):
    assert kannel_errors(
        settings, SENDSMS_URL="http://127.0.0.1:13013/cgi-bin/sendsms",
        sendsms_params={"smsc": "usb0-modem", "from": "+255700000000",
                        "username": "rapidsms", "password": "CHANGE-ME"},
        charset="ascii", encode_errors="ignore", coding=0,
        delivery_report_url="http://127.0.0.1:8000",
        token="s3cret", default_region="TZ") == []


def test_no_option_is_required(settings):
    assert kannel_errors(settings) == []


def test_a_misspelt_option_names_the_right_one(settings):
    (error,) = kannel_errors(settings, sendsms_parameters={"username": "u"})
    assert (error.id, error.hint) == ("smsrouter.E008", "Did you mean 'sendsms_params'?")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [("sendsms_params", "username=u&password=p", "dict"), ("coding", "2", "int"),
     ("token", 1234, "str"), ("sendsms_url", None, "str")],
)
def test_an_option_of_the_wrong_type(settings, option, value, expected):
    (error,) = kannel_errors(settings, **{option: value})
    assert error.id == "smsrouter.E009"
    assert error.msg.endswith(f"option {option!r} must be {expected}, not {type(value).__name__}.")


@pytest.mark.parametrize(
    ("options", "check_id", "hint"),
    [
        ({"sendsms_url": "127.0.0.1:13013/cgi-bin/sendsms"}, "smsrouter.E041",
         "'sendsms_url': 'http://127.0.0.1:13013/cgi-bin/sendsms' (smsbox's sendsms-port)"),
        ({"sendsms_url": "ftp://kannel/cgi-bin/sendsms"}, "smsrouter.E041", "'sendsms_url'"),
        ({"delivery_report_url": "sms.example.org"}, "smsrouter.E042", "'delivery_report_url'"),
        ({"delivery_report_url": "https://sms.example.org/?token=x"}, "smsrouter.E042",
         "'delivery_report_url': 'https://sms.example.org'"),
        ({"charset": "KLINGON"}, "smsrouter.E043", "'charset': 'UTF-8'"),
        ({"charset": "base64"}, "smsrouter.E043", "'charset': 'UTF-8'"),
        ({"encode_errors": "skip"}, "smsrouter.E047", "Leave it out"),
        ({"coding": 1}, "smsrouter.E044", "Leave 'coding' out"),
        ({"coding": True}, "smsrouter.E044", "Leave 'coding' out"),
        ({"sendsms_params": {"username": "u", "dlr-mask": 31, "charset": "UTF-8"}},
         "smsrouter.E045", "Remove them"),
        ({"token": ""}, "smsrouter.E046", "Set 'token' to a long random string"),
    ],
)
def test_a_wrong_value_is_reported_with_what_to_write(settings, options, check_id, hint):
    (error,) = kannel_errors(settings, **options)
    assert error.id == check_id
    assert error.hint.startswith(hint)


def test_the_sendsms_params_error_names_each_clash(settings):
    (error,) = kannel_errors(settings, sendsms_params={"to": "+1", "dlr-url": "x"})
    assert error.msg == ("Backend 'kannel': sendsms_params sets 'dlr-url', 'to', "
                         "which the backend sets for each message.")
