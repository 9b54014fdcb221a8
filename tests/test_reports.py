"""/backend/<name>/status/ and the forward-only rule for delivery reports."""

import pytest

import smsrouter
from smsrouter import reports
from smsrouter.backends.base import StatusReport
from smsrouter.models import Connection, Message

# Real commits: replies leave through the outbox once their transaction has committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(settings):
    """One message sent through a backend that takes reports, one through one that doesn't."""
    settings.INSTALLED_BACKENDS = {
        "gw": {"ENGINE": "tests.backends.ReportingBackend"},
        "plain": {"ENGINE": "tests.backends.RecordingBackend"},
    }
    (message,) = smsrouter.send("hello", "+1", backend="gw")
    return message


def status(client, backend="gw", **data):
    return client.post(f"/backend/{backend}/status/", data)


def stored(message):
    return Message.objects.values_list("status", "error").get(pk=message.id)


@pytest.mark.parametrize("final", ["delivered", "failed"])
def test_a_report_moves_the_message_forward(client, sent, final):
    response = status(client, id=sent.id, status=final)
    assert (response.status_code, response.content) == (200, b"OK")
    assert stored(sent)[0] == final


def test_reports_never_move_a_message_backwards(client, sent):
    """Out of order: delivered, then a late "sent", then "failed": it stays delivered."""
    for report in ["delivered", "sent", "failed", "queued"]:
        assert status(client, id=sent.id, status=report).status_code == 200
    assert stored(sent) == ("delivered", "")


def test_a_repeated_report_changes_nothing(client, sent):
    status(client, ref=sent.external_id, status="failed", error="absent subscriber")
    status(client, ref=sent.external_id, status="failed", error="other")
    assert stored(sent) == ("failed", "absent subscriber")


def test_the_gateways_id_finds_the_message(client, sent):
    assert status(client, ref=sent.external_id, status="delivered").status_code == 200
    assert stored(sent)[0] == "delivered"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"id": "999999", "status": "delivered"}, "id does not match a message sent through 'gw'"),
        ({"ref": "nope", "status": "delivered"}, "ref does not match a message sent through 'gw'"),
        ({"id": "x", "status": "delivered"}, "id must be a number"),
        ({"id": "{id}", "status": "bounced"}, "status 'bounced' is not an outgoing status"),
    ],
)
def test_a_bad_report_is_400_and_changes_nothing(client, sent, data, error):
    data = {key: value.format(id=sent.id) for key, value in data.items()}
    response = status(client, **data)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert stored(sent) == ("sent", "")


def test_a_report_for_another_backends_message_is_refused(client, sent, settings):
    settings.INSTALLED_BACKENDS["gw2"] = {"ENGINE": "tests.backends.ReportingBackend"}
    assert status(client, backend="gw2", id=sent.id, status="delivered").status_code == 400
    assert stored(sent)[0] == "sent"


def test_a_backend_without_reports_is_405_and_an_unknown_one_404(client, sent):
    assert status(client, backend="plain", id=sent.id, status="delivered").status_code == 405
    assert status(client, backend="nope", id=sent.id, status="delivered").status_code == 404
    assert client.get(f"/backend/gw/status/?id={sent.id}&status=delivered").status_code == 405


def test_a_report_that_overtakes_the_gateways_answer_is_not_undone(client, settings):
    """Kannel can report delivery before its sendsms answer reaches us."""
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": "tests.backends.FastReporter"}}
    (message,) = smsrouter.send("hello", "+1", backend="gw")
    assert stored(message) == ("delivered", "")


def test_the_times_of_sending_and_of_the_report_are_kept(client, sent):
    """The support person's thread shows when the gateway took a message and when its
    report came; a report that changes nothing leaves the report time alone."""
    row = Message.objects.get(pk=sent.id)
    assert row.status == "sent" and row.sent_at is not None and row.reported_at is None
    status(client, id=sent.id, status="delivered")
    row.refresh_from_db()
    assert row.reported_at is not None and row.reported_at >= row.sent_at
    first = row.reported_at
    status(client, id=sent.id, status="sent")
    row.refresh_from_db()
    assert row.reported_at == first


def test_a_failure_because_the_number_opted_out_opts_it_out_however_late(sent):
    """The report speaks of the number: it opts it out though the message stays delivered."""
    reports.apply("gw", [StatusReport("delivered", "id", message_id=sent.id)])
    assert reports.apply("gw", [StatusReport("failed", "id", message_id=sent.id,
                                             error="blacklisted", opted_out=True)]) == 0
    assert stored(sent) == ("delivered", "")
    assert Connection.objects.get().opted_out_at is not None


def test_only_a_failure_can_say_the_number_opted_out():
    with pytest.raises(ValueError, match="must be a failure"):
        StatusReport("delivered", "id", message_id=1, opted_out=True)
