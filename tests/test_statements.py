"""The hot path's hand-made SQL writes what the ORM would have written."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection as db, transaction
from django.utils import timezone

from smsrouter import statements
from smsrouter.models import Backend, Connection, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def number():
    return Connection.objects.create(backend=Backend.objects.create(name="a"), identity="+1")


def new(number, text="hi", **values):
    return Message(**{"direction": "in", "backend": number.backend, "connection": number,
                      "text": text, "status": "received", **values})


def test_inserted_rows_read_back_as_the_orm_reads_them(number):
    due = timezone.now() + timedelta(hours=1)
    record = new(number, "héllo ✓", external_id="x1", fields={"lang": "fr", "n": [1, 2]},
                 due_at=due, segments=2)
    statements.insert([record])
    stored = Message.objects.get(pk=record.pk)
    assert (stored.text, stored.external_id, stored.fields, stored.due_at, stored.segments) == (
        "héllo ✓", "x1", {"lang": "fr", "n": [1, 2]}, due, 2)
    assert stored.created_at == record.created_at and record.created_at is not None
    assert not record._state.adding


def test_many_rows_take_several_statements_and_keep_their_order(number, monkeypatch):
    monkeypatch.setattr(statements, "ROWS_PER_INSERT", 7)
    records = [new(number, f"m{n}") for n in range(30)]
    statements.insert(records)
    assert [(r.pk, r.text) for r in records] == list(
        Message.objects.order_by("pk").values_list("pk", "text"))


def test_a_duplicate_is_an_integrity_error_and_its_statements_write_nothing(number, monkeypatch):
    monkeypatch.setattr(statements, "ROWS_PER_INSERT", 2)
    statements.insert([new(number, external_id="dup")])
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.insert([new(number, "a"), new(number, "b"), new(number, external_id="dup")])
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_statements_of_one_insert_commit_or_fail_together(number, monkeypatch):
    monkeypatch.setattr(statements, "ROWS_PER_INSERT", 2)
    statements.insert([new(number, external_id="dup")])
    assert db.get_autocommit()
    with pytest.raises(IntegrityError):
        statements.insert([new(number, "a"), new(number, "b"), new(number, external_id="dup")])
    assert list(Message.objects.values_list("external_id", flat=True)) == ["dup"]


def test_update_changes_only_the_given_ids_and_statuses(number, monkeypatch):
    monkeypatch.setattr(statements, "IDS_PER_UPDATE", 2)
    records = [new(number, str(n), direction="out", status=status)
               for n, status in enumerate(["queued", "sending", "delivered", "queued", "queued"])]
    statements.insert(records)
    when = timezone.now()
    statements.update([r.pk for r in records[:4]], {"status": "sent", "updated_at": when,
                                                    "fields": {"ok": True}},
                      only_status=["queued", "sending"])
    rows = list(Message.objects.order_by("pk").values_list("status", "fields"))
    assert rows == [("sent", {"ok": True}), ("sent", {"ok": True}), ("delivered", {}),
                    ("sent", {"ok": True}), ("queued", {})]
    assert Message.objects.filter(updated_at=when).count() == 3


def test_nothing_to_write_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        statements.insert([])
        statements.update([], {"status": "sent"})
