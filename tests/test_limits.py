"""What a stored message may hold is decided once (smsrouter.limits), before anything is
written: the same input gets the same answer on SQLite and on PostgreSQL. Run with
SMSROUTER_TEST_DATABASE_URL set, these tests are the PostgreSQL pass."""

import json
import math

import pytest
from channels.testing import HttpCommunicator
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

import smsrouter
from smsrouter import limits
from smsrouter.backends.base import Outcome, StatusReport
from smsrouter.exceptions import BadInbound
from smsrouter.models import Backend, Connection, Contact, Message
from tests import backends as test_backends
from tests.backends import RecordingBackend

RECORDING = "tests.backends.RecordingBackend"
#: Text that no database stores as it is, and some that every one does.
NASTY = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"])
CHARACTERS = st.characters(exclude_categories=()) | NASTY
#: Every example touches the database; the fixtures' rows only grow meanwhile. (Naming
#: health checks replaces the profile's list, so too_slow is named again.)
FUZZ = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])


@pytest.fixture
def recording(settings):
    """Backends that record what they send: no network, no replies unless a test asks."""
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": RECORDING},
                                   "long-ids": {"ENGINE": "tests.test_limits.LongIdBackend"}}
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None


def nothing_written() -> bool:
    return not (Backend.objects.exists() or Connection.objects.exists()
                or Message.objects.exists() or Contact.objects.exists())


# The rules themselves.
@given(st.text(CHARACTERS))
def test_a_text_is_stored_without_what_no_database_holds_and_kept_exact(text):
    stored, fields = limits.with_original(text, {})
    assert limits.UNSTORABLE.search(stored) is None and len(stored) == len(text)
    assert (limits.original_text(fields) if fields else stored) == text
    assert limits.fields_problem(fields) is None


def test_the_original_is_a_list_of_runs_and_code_points():
    assert limits.with_original("a\x00b\ud800", {"k": 1}) == (
        "a\ufffdb\ufffd", {"k": 1, "original_text": ["a", 0, "b", 0xD800]})
    assert limits.with_original("plain", {"k": 1}) == ("plain", {"k": 1})


def test_the_lengths_come_from_the_models():
    assert limits.IDENTITY_LENGTH == Connection._meta.get_field("identity").max_length == 100
    assert limits.EXTERNAL_ID_LENGTH == Message._meta.get_field("external_id").max_length == 255
    assert limits.MAX_SEGMENTS == 32767


@pytest.mark.parametrize(("fields", "problem"), [
    ({"a": math.nan}, "fields['a'] is nan, which JSON cannot hold"),
    ({"a": [math.inf]}, "fields['a'][0] is inf, which JSON cannot hold"),
    ({"a": 1e16}, "fields['a'] is the float 1e+16: PostgreSQL gives floats from 1e+16 up "
                  "back as other numbers; store it as a string or an int"),
    ({"a": "x\x00"}, "fields['a'] contains NUL (U+0000) at position 1, which no database "
                     "can store"),
    ({"x\ud800": 1}, "fields has a key that contains a lone surrogate (U+D800) at position 1, "
                     "which no database can store"),
    ({(1, 2): 1}, "fields has a key of type tuple; JSON keys are strings"),
    ({"a": {1: "one"}}, "fields['a'] has a key of type int; JSON keys are strings"),
    ({"a": object()}, "fields['a'] (object) is not JSON-serializable"),
    ({"a": 10**5000}, "fields['a'] is an integer too long for JSON; store it as a string"),
    ({"a": [[[]]] * 1}, None),
    ([1], "fields must be a dict, not list"),
])
def test_fields_that_a_database_would_refuse_or_change_are_named(fields, problem):
    assert limits.fields_problem(fields) == problem


def test_fields_may_nest_max_depth_deep_and_no_deeper():
    def nested(depth):
        value = {}
        for _ in range(depth - 1):
            value = {"a": value}
        return value

    assert limits.fields_problem(nested(limits.MAX_DEPTH)) is None
    assert "is nested more than 100 deep" in limits.fields_problem(nested(limits.MAX_DEPTH + 1))
    assert "is nested more than 100 deep" in limits.fields_problem(nested(100_000))


# Through incoming(): refused before anything is written, or stored alike everywhere.
@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "error"), [
    ({"identity": "1" * 101}, "identity is 101 characters long; at most 100 can be stored "
                              "(Connection.identity)"),
    ({"identity": "+1\x00"}, "identity contains NUL (U+0000) at position 2, which no "
                             "database can store"),
    ({"identity": "+1\udc80"}, "identity contains a lone surrogate (U+DC80) at position 2, "
                               "which no database can store"),
    ({"identity": ""}, "identity must not be empty"),
    ({"identity": 5}, "identity must be a string, not int"),
    ({"text": b"hi"}, "text must be a string, not bytes"),
    ({"external_id": "x" * 256}, "external_id is 256 characters long; at most 255 can be "
                                 "stored (Message.external_id)"),
    ({"external_id": "id\x00"}, "external_id contains NUL (U+0000) at position 2, which no "
                                "database can store"),
    ({"external_id": 42}, "external_id must be a string or None, not int"),
    ({"fields": {"to": math.nan}}, "fields['to'] is nan, which JSON cannot hold"),
    ({"fields": "to=1"}, "fields must be a dict, not str"),
])
def test_incoming_refuses_what_no_database_can_store_and_writes_nothing(recording, kwargs, error):
    values = {"identity": "+255700000001", "text": "hi", **kwargs}
    with pytest.raises(BadInbound) as refused:
        smsrouter.incoming("gw", values.pop("identity"), values.pop("text"), **values)
    assert str(refused.value) == error
    assert isinstance(refused.value, ValueError)
    assert nothing_written()


@pytest.mark.django_db
def test_the_longest_identity_and_external_id_are_stored(recording):
    msg = smsrouter.incoming("gw", "1" * 100, "hi", external_id="x" * 255)
    stored = Message.objects.select_related("connection").get(pk=msg.id)
    assert (stored.connection.identity, stored.external_id) == ("1" * 100, "x" * 255)


@pytest.mark.django_db
def test_an_identity_is_judged_as_the_backend_normalizes_it(settings, recording):
    """Spaces around a number do not count once it is written in E.164."""
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": RECORDING, "default_region": "TZ"}}
    msg = smsrouter.incoming("gw", "0754 000 001" + " " * 100, "hi")
    assert msg.connection.identity == "+255754000001"


@pytest.mark.django_db
def test_a_text_with_nul_and_lone_surrogates_is_stored_and_the_original_kept(recording):
    original = "pay 10\x00000 to \U0001f600 \ud800!"
    msg = smsrouter.incoming("gw", "+255700000001", original, fields={"to": "1234"})
    stored = Message.objects.get(pk=msg.id)
    assert stored.text == msg.text == "pay 10\ufffd000 to \U0001f600 \ufffd!"
    assert stored.fields == msg.fields == {
        "to": "1234", "original_text": ["pay 10", 0, "000 to \U0001f600 ", 0xD800, "!"]}
    assert limits.original_text(stored.fields) == original


@pytest.mark.django_db
@FUZZ
@given(text=st.text(CHARACTERS, max_size=30))
def test_any_text_is_stored_and_recoverable_exactly(recording, text):
    stored = Message.objects.get(pk=smsrouter.incoming("gw", "+255700000001", text).id)
    assert limits.UNSTORABLE.search(stored.text) is None
    assert (limits.original_text(stored.fields) or stored.text) == text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(CHARACTERS, max_size=5)
    | st.sampled_from([10**4299, -(10**4299), 9.999999999999998e15, 5e-324, -0.0]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(CHARACTERS, max_size=4), inner, max_size=3),
    max_leaves=8)


@pytest.mark.django_db
@FUZZ
@given(fields=st.dictionaries(st.text(CHARACTERS, max_size=4), JSON_VALUES, max_size=3))
def test_fields_are_refused_or_given_back_equal_by_the_database(recording, fields):
    """The same answer on every database: what limits lets through, this database stores
    and returns as it was given (what it refuses is never sent to the database)."""
    try:
        msg = smsrouter.incoming("gw", "+255700000001", "hi", fields=fields)
    except BadInbound as refused:
        assert refused.field.startswith("fields") and limits.fields_problem(fields) is not None
        return
    assert Message.objects.get(pk=msg.id).fields == fields


@pytest.mark.django_db
def test_fields_at_the_limits_are_stored_and_given_back_equal(recording):
    deep = {}  # under fields, the 100th level
    for _ in range(limits.MAX_DEPTH - 2):
        deep = {"a": deep}
    fields = {"deep": deep, "big": 10**4299, "float": 9.999999999999998e15, "tiny": 5e-324}
    msg = smsrouter.incoming("gw", "+255700000001", "hi", fields=fields)
    assert Message.objects.get(pk=msg.id).fields == fields


@pytest.mark.django_db
def test_a_text_of_more_segments_than_the_column_holds_is_stored(recording):
    """2.2 MB of a character outside GSM-7 is 32,768 UCS-2 segments; it is stored, counted
    at the column's most."""
    text = "`" * (67 * 32_768)
    stored = Message.objects.get(pk=smsrouter.incoming("gw", "+255700000001", text).id)
    assert (len(stored.text), stored.segments) == (len(text), 32_767)


# Through send() and replies.
@pytest.mark.django_db
@pytest.mark.parametrize(("to", "error"), [
    ("1" * 101, "identity '1111111111111111111111111111111111111111' is 101 characters long; "
                "at most 100 can be stored (Connection.identity)."),
    ("+1\x00", "identity '+1\\x00' contains NUL (U+0000) at position 2, which no database "
               "can store."),
])
def test_send_refuses_an_identity_no_database_can_store(recording, to, error):
    with pytest.raises(ValueError) as refused:
        smsrouter.send("hi", ["+255700000001", to], backend="gw")
    assert str(refused.value) == error
    assert nothing_written()


@pytest.mark.django_db
def test_send_refuses_a_text_that_is_not_a_string(recording):
    with pytest.raises(ValueError, match="text must be a string, not NoneType"):
        smsrouter.send(None, "+255700000001", backend="gw")
    assert nothing_written()


@pytest.mark.django_db(transaction=True)
def test_an_outgoing_text_is_stored_and_sent_without_nul_the_original_kept(recording):
    test_backends.calls.clear()
    [msg] = smsrouter.send("a\x00b", "+255700000001", backend="gw")
    stored = Message.objects.get(pk=msg.id)
    assert (stored.text, stored.status, stored.fields) == ("a\ufffdb", "sent",
                                                           {"original_text": ["a", 0, "b"]})
    assert test_backends.calls == [("gw", [("+255700000001", "a\ufffdb")])]


class RepliesWithNul(smsrouter.App):
    def handle(self, msg):
        msg.respond("got\x00it")
        return True


class PutsNanInFields(smsrouter.App):
    def parse(self, msg):
        msg.fields["score"] = math.nan


class PutsAnIntKeyInFields(smsrouter.App):
    def parse(self, msg):
        msg.fields["scores"] = {1: "one", "two": 2}  # json.dumps(sort_keys=True) raises


@pytest.mark.django_db
def test_a_reply_with_nul_is_stored_with_the_original(recording, settings):
    settings.SMSROUTER_APPS = ["tests.test_limits.RepliesWithNul"]
    msg = smsrouter.incoming("gw", "+255700000001", "hi")
    reply = Message.objects.get(direction="out")
    assert (reply.text, reply.fields, reply.in_response_to_id) == (
        "got\ufffdit", {"original_text": ["got", 0, "it"]}, msg.id)


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "problem"), [
    ("PutsNanInFields", "fields['score'] is nan, which JSON cannot hold"),
    ("PutsAnIntKeyInFields", "fields['scores'] has a key of type int; JSON keys are strings"),
])
def test_fields_an_app_made_unstorable_fail_the_message_and_keep_it(
        recording, settings, app, problem):
    settings.SMSROUTER_APPS = [f"tests.test_limits.{app}"]
    msg = smsrouter.incoming("gw", "+255700000001", "hi", fields={"to": "1"})
    stored = Message.objects.get(pk=msg.id)
    assert (stored.status, stored.fields, stored.error) == (
        "failed", {"to": "1"}, f"fields cannot be stored: {problem}")


class LongIdBackend(RecordingBackend):
    """A gateway whose ids no database can store: longer than external_id's column."""

    async def send(self, messages):
        return [Outcome(external_id="id-" + "x" * 300) for _ in messages]


@pytest.mark.django_db(transaction=True)
def test_a_gateway_id_that_cannot_be_stored_is_dropped_and_the_message_sent(recording, caplog):
    [msg] = smsrouter.send("hi", "+255700000001", backend="long-ids")
    stored = Message.objects.get(pk=msg.id)
    assert (stored.status, stored.external_id) == ("sent", None)
    assert "it is dropped, so no delivery report can find the message" in caplog.text


def test_reports_refuse_ids_no_message_can_have_and_scrub_their_error():
    with pytest.raises(BadInbound, match="^MessageSid contains NUL"):
        StatusReport("failed", "MessageSid", external_id="SM\x00")
    with pytest.raises(BadInbound, match="^id must be a message id from 1 to 9223372036854775807"):
        StatusReport("failed", "id", message_id=2**63)
    assert StatusReport("failed", "id", message_id=1, error="no\x00pe").error == "no\ufffdpe"
    assert Outcome(error="gateway said \udc80").error == "gateway said \ufffd"


# Through a webhook, the ASGI root as a server drives it.
async def post(application, path, body, content_type=b"application/x-www-form-urlencoded"):
    communicator = HttpCommunicator(application, "POST", path, body=body, headers=[
        (b"host", b"127.0.0.1"), (b"content-type", content_type)])
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)
    return response["status"], response["body"]


@pytest.fixture
def webhooks(settings, application):
    settings.INSTALLED_BACKENDS = {
        "form": {"ENGINE": "tests.backends.FormBackend"},
        "vumi": {"ENGINE": "smsrouter.backends.vumi.VumiBackend",
                 "sendsms_url": "http://127.0.0.1:9/"},
    }
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return application


@pytest.mark.asyncio
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "through Django"])
async def test_a_webhook_with_nul_in_the_text_is_stored(async_db, webhooks, settings, fast_path):
    settings.SMSROUTER_WEBHOOK_FAST_PATH = fast_path
    assert await post(webhooks, "/backend/form/", b"identity=%2B1&text=a%00b") == (200, b"OK")
    stored = await Message.objects.aget()
    assert (stored.text, limits.original_text(stored.fields)) == ("a\ufffdb", "a\x00b")


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "error"), [
    ({"from_addr": "1" * 101, "content": "hi"},
     "identity is 101 characters long; at most 100 can be stored (Connection.identity)"),
    ({"from_addr": "+1", "content": "hi", "message_id": "m" * 256},
     "external_id is 256 characters long; at most 255 can be stored (Message.external_id)"),
    ({"from_addr": "+1\u0000", "content": "hi"},
     "identity contains NUL (U+0000) at position 2, which no database can store"),
])
async def test_a_webhook_the_database_would_refuse_is_400_and_writes_nothing(
        async_db, webhooks, body, error):
    status, answer = await post(webhooks, "/backend/vumi/", json.dumps(body).encode(),
                                b"application/json")
    assert (status, json.loads(answer)) == (400, {"error": error})
    assert not await Message.objects.aexists() and not await Connection.objects.aexists()
