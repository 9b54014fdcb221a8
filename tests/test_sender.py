"""The sender: claims before it sends, records each outcome, retries what a retry may fix,
and is handed its messages once they are committed, by the one dispatch for every mode."""

import random
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

import smsrouter
from smsrouter import dispatch, sender, statements
from smsrouter.backends.base import Outcome
from smsrouter.models import Message

pytestmark = pytest.mark.django_db


def send_due(**kwargs):
    return async_to_sync(sender.send_due)(**kwargs)


def rows():
    return list(Message.objects.order_by("pk").values_list("status", "attempts", "error"))


def test_a_row_is_claimed_durably_before_the_gateway_sees_it_and_only_once(queued):
    sent = smsrouter.send("hello", ["+1", "+2"], backend="gw")
    ids = [m.id for m in sent]
    with transaction.atomic():
        assert statements.claim(ids, timezone.now()) == ids
        assert statements.claim(ids, timezone.now()) == []  # a second sender gets nothing
        assert rows() == [("sending", 1, ""), ("sending", 1, "")]
        transaction.set_rollback(True)
    assert send_due(ids=ids).sent == 2
    assert send_due(ids=ids).claimed == 0
    assert queued == [("gw", [("+1", "hello"), ("+2", "hello")])]
    assert list(Message.objects.values_list("status", "attempts", "external_id")) == [
        ("sent", 1, f"gw-{ids[0]}"), ("sent", 1, f"gw-{ids[1]}")]


def test_a_temporary_failure_is_queued_again_with_backoff_then_fails(queued, settings):
    settings.SMSROUTER_SEND_BACKOFF = 10
    (message,) = smsrouter.send("hello", "+1", backend="down")
    before = timezone.now()
    done = send_due(ids=[message.id])
    assert done.retries == {"down": [message.id]} and done.retry_at > before
    assert done.all_due_at == done.retry_at  # one message: the first retry is the last
    row = Message.objects.get()
    assert (row.status, row.attempts, row.error) == ("queued", 1, "gateway answered 503")
    assert before + timedelta(seconds=5) <= row.due_at <= before + timedelta(seconds=11)
    assert send_due(ids=[message.id]).claimed == 0  # not due yet
    for _ in (2, 3):
        Message.objects.update(due_at=timezone.now())  # the clock moves on
        send_due(ids=[message.id])
    assert rows() == [("failed", 3, "gateway answered 503")]


def test_retries_failed_together_are_due_by_the_last_of_their_backoffs(queued, settings):
    """A worker's retry task runs once every one of them is due, or it would skip some."""
    sent = smsrouter.send("hello", [f"+{n}" for n in range(1, 9)], backend="down")
    done = send_due(ids=[m.id for m in sent])
    due = list(Message.objects.values_list("due_at", flat=True))
    assert (done.retry_at, done.all_due_at) == (min(due), max(due))


def test_a_permanent_failure_fails_that_message_alone(queued):
    sent = smsrouter.send("hello", ["0700", "+1"], backend="picky")
    assert send_due(ids=[m.id for m in sent]).failed == 1
    assert rows() == [("failed", 1, "rejected number"), ("sent", 1, "")]


def test_a_backend_that_miscounts_its_outcomes_fails_the_batch_and_says_so(queued, settings):
    settings.INSTALLED_BACKENDS = {"miscounts": {"ENGINE": "tests.backends.MiscountingBackend"}}
    sent = smsrouter.send("hello", ["+1", "+2"], backend="miscounts")
    send_due(ids=[m.id for m in sent])
    assert [status for status, *_ in rows()] == ["failed", "failed"]
    assert "1 outcome(s) for 2 message(s)" in rows()[0][2]


def test_a_backend_that_cannot_send_here_leaves_its_rows_queued_at_no_cost(queued):
    (message,) = smsrouter.send("hello", "+1", backend="elsewhere")
    assert send_due(ids=[message.id]).claimed == 0
    assert rows() == [("queued", 0, "")]


def test_a_delivery_report_that_overtook_the_answer_stands(queued):
    (message,) = smsrouter.send("hello", "+1", backend="gw")
    [claimed] = sender._claim_due([message.id], ["gw"], 10)
    Message.objects.update(status="delivered")
    sender.record([(claimed, Outcome(external_id="x"))])
    assert Message.objects.get().status == "delivered"


def test_the_backoff_doubles_up_to_its_cap_less_a_random_half(settings, monkeypatch):
    settings.SMSROUTER_SEND_BACKOFF, settings.SMSROUTER_SEND_BACKOFF_MAX = 10, 35
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert [sender.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 35, 35]
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert sender.backoff(1).total_seconds() == 5


def test_inline_without_a_server_sends_in_the_caller_once_committed(queued, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.SMSROUTER_PROCESSING = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            (message,) = smsrouter.send("hello", "+1", backend="gw")
            # Nothing before the commit; stored claimed for this caller, attempt counted.
            assert queued == [] and rows() == [("sending", 1, "")]
    assert queued == [("gw", [("+1", "hello")])]
    assert message.status == "sent" and rows() == [("sent", 1, "")]


def test_inline_with_a_scheduler_in_the_process_wakes_it_instead(queued, settings,
                                                                django_capture_on_commit_callbacks):
    settings.SMSROUTER_PROCESSING = "inline"
    woken = []
    sender.serve_locally(lambda messages, due_at: woken.append(([m.id for m in messages], due_at)))
    try:
        later = timezone.now() + timedelta(hours=1)
        with django_capture_on_commit_callbacks(execute=True):
            (now,) = smsrouter.send("now", "+1", backend="gw")
            (scheduled,) = smsrouter.send("later", "+1", backend="gw", at=later)
    finally:
        sender.serve_locally(None)
    assert woken == [([now.id], None), ([scheduled.id], later)]
    assert queued == [] and [status for status, *_ in rows()] == ["queued", "queued"]


def test_queued_modes_hand_ids_to_workers_once_committed_and_by_backend(queued, settings, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    sent_tasks = []
    monkeypatch.setattr(dispatch, "_celery", lambda: type("App", (), {
        "send_task": staticmethod(lambda name, args, eta=None: sent_tasks.append((name, args, eta)))}))
    later = timezone.now() + timedelta(minutes=5)
    with django_capture_on_commit_callbacks() as callbacks:
        sent = smsrouter.send("hello", ["+1", "+2"], backend="gw", at=later)
    assert sent_tasks == []
    for callback in callbacks:
        callback()
    assert sent_tasks == [(dispatch.SEND_TASK, ("gw", [m.id for m in sent]), later)]


def test_channels_mode_leaves_a_message_due_later_to_the_sweep(queued, settings):
    from channels.layers import get_channel_layer

    settings.SMSROUTER_PROCESSING = "channels"
    dispatch.send_later("gw", [1, 2, 3], timezone.now() + timedelta(minutes=1))
    assert dispatch.OUTGOING_CHANNEL not in get_channel_layer().channels
    dispatch.send_later("gw", [1, 2, 3])
    assert dispatch.OUTGOING_CHANNEL in get_channel_layer().channels
