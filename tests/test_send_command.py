"""`manage.py smsrouter_send` says what became of each number: sent, failed (with the first
errors), queued for later, skipped; and exits with an error when nothing was sent or queued.

Committed for real: the command reads the statuses send() returns, and in inline mode
without a server the messages are sent when send()'s transaction commits.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from smsrouter.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline(queued, settings):
    """The test backends of `queued`, in inline mode: this process sends as it commits."""
    settings.SMSROUTER_PROCESSING = "inline"
    return queued


def report(out):
    """The lines after the progress bar, which ends the first line."""
    return out.getvalue().split("\n", 1)[1].splitlines()


def send(*args):
    out = StringIO()
    call_command("smsrouter_send", *args, stdout=out)
    return report(out)


def failing_send(*args):
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("smsrouter_send", *args, stdout=out)
    return report(out), str(raised.value)


def statuses():
    return sorted(Message.objects.values_list("connection__identity", "status"))


def test_what_was_sent_is_counted_as_sent(inline):
    assert send("+1", "+2", "--text", "hi", "--backend", "gw") == [
        "2 sent, 0 failed, 0 queued for later, 0 skipped."]
    assert inline == [("gw", [("+1", "hi"), ("+2", "hi")])]


def test_failures_are_counted_and_the_first_three_shown_with_their_numbers(inline):
    lines = send("+1", "0701", "0702", "0703", "0704", "--text", "hi", "--backend", "picky")
    assert lines == [
        "1 sent, 4 failed, 0 queued for later, 0 skipped.",
        "Failed, the first 3 of 4 (the admin lists every one with its error):",
        "  0701: rejected number",
        "  0702: rejected number",
        "  0703: rejected number",
    ]


def test_nothing_sent_is_an_error_after_the_summary(inline):
    """Today's bug: "2 message(s) queued." when both had failed."""
    lines, error = failing_send("0701", "0702", "--text", "hi", "--backend", "picky")
    assert lines == ["0 sent, 2 failed, 0 queued for later, 0 skipped.", "Failed:",
                     "  0701: rejected number", "  0702: rejected number"]
    assert error == "No message was sent or queued for later."
    assert statuses() == [("0701", "failed"), ("0702", "failed")]


def test_a_gateway_that_is_down_leaves_retries_which_are_not_a_send(inline):
    lines, error = failing_send("+1", "+2", "--text", "hi", "--backend", "down")
    assert lines[0] == "0 sent, 0 failed, 2 queued for later, 0 skipped."
    assert lines[1].startswith("To be retried by the server's sender (the ASGI server, ")
    assert lines[1].endswith("(+1: gateway answered 503).") or lines[1].endswith(
        "(+2: gateway answered 503).")
    assert error == "No message was sent or queued for later."
    assert statuses() == [("+1", "queued"), ("+2", "queued")]


def test_a_scheduled_send_is_queued_for_later_and_not_a_failure(inline):
    lines = send("+1", "+2", "--text", "hi", "--backend", "gw", "--at", "2099-01-01T08:00+03:00")
    assert lines == [
        "0 sent, 0 failed, 2 queued for later, 0 skipped.",
        ("Scheduled for 2099-01-01T08:00:00+03:00: 2, sent then by the server's sender (the "
         "ASGI server, `manage.py smsrouter_sender`, or `smsrouter_connect` for a backend that "
         "holds a link)."),
    ]
    assert inline == [] and statuses() == [("+1", "queued"), ("+2", "queued")]


def test_a_backend_whose_link_another_process_holds_leaves_them_to_it(inline):
    lines = send("+1", "--text", "hi", "--backend", "elsewhere")
    assert lines[0] == "0 sent, 0 failed, 1 queued for later, 0 skipped."
    assert lines[1].startswith("Left to the server's sender")


def test_in_celery_mode_they_are_left_to_the_workers(queued, monkeypatch):
    handed = []
    monkeypatch.setattr("smsrouter.dispatch.send_later",
                        lambda name, ids, due_at=None: handed.append((name, len(ids))))
    assert send("+1", "+2", "--text", "hi", "--backend", "gw") == [
        "0 sent, 0 failed, 2 queued for later, 0 skipped.",
        "Left to the Celery workers: 2.",
    ]
    assert handed == [("gw", 2)]


def test_a_number_given_twice_is_sent_once_and_a_row_without_one_is_skipped(inline, settings,
                                                                           tmp_path):
    settings.INSTALLED_BACKENDS = {
        "gw": {"ENGINE": "tests.backends.RecordingBackend", "default_region": "TZ"}}
    path = tmp_path / "numbers.csv"
    path.write_text("name,phone\nAmina,0712345678\nJuma,\n\nNeema,+255712345679\n")
    lines = send("+255712345678", "+255712345679", "--text", "hi", "--backend", "gw",
                 "--csv", str(path))
    assert lines == [
        "2 sent, 0 failed, 0 queued for later, 3 skipped.",
        "Skipped: 2 number(s) given more than once (sent once), 1 CSV row(s) without a number.",
    ]
    assert statuses() == [("+255712345678", "sent"), ("+255712345679", "sent")]


def test_a_backend_must_be_named_when_there_are_several(inline):
    with pytest.raises(CommandError, match=r"--backend is needed: INSTALLED_BACKENDS has 4"):
        call_command("smsrouter_send", "+1", "--text", "hi")
    with pytest.raises(CommandError, match="No backend named 'nope'"):
        call_command("smsrouter_send", "+1", "--text", "hi", "--backend", "nope")
    assert statuses() == []


def test_a_batch_refused_stops_the_command_after_reporting_the_batches_before(inline, monkeypatch):
    monkeypatch.setattr("smsrouter.management.commands.smsrouter_send.BATCH", 1)
    out = StringIO()
    with pytest.raises(CommandError, match=r"\(1 of 2 stored before this\.\)"):
        call_command("smsrouter_send", "+1", "+" + "9" * 200, "--text", "hi", "--backend", "gw",
                     stdout=out)
    assert report(out) == ["1 sent, 0 failed, 0 queued for later, 0 skipped."]
