"""The hot path's hand-made SQL writes what the ORM would have written."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection as db, transaction
from django.utils import timezone

from smsrouter import connectionrow, statements
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


def test_connections_are_found_or_made_once(number):
    made = statements.connections_of(number.backend_id, ["+1", "+2", "+3"])
    assert made["+1"].pk == number.pk and not made["+2"]._state.adding
    assert sorted(Connection.objects.values_list("identity", "pk")) == sorted(
        (identity, row.pk) for identity, row in made.items())
    again = statements.connections_of(number.backend_id, ["+3", "+2"])
    assert {i: c.pk for i, c in again.items()} == {"+2": made["+2"].pk, "+3": made["+3"].pk}
    assert Connection.objects.count() == 3


#: A trigger that makes the '+9' row just before our INSERT of it does, as a concurrent
#: webhook would between our SELECT and our INSERT.
RACE = {
    "sqlite": (
        ["CREATE TEMP TRIGGER race BEFORE INSERT ON smsrouter_connection "
         "WHEN NEW.identity = '+9' BEGIN "
         "INSERT OR IGNORE INTO smsrouter_connection (backend_id, identity) "
         "VALUES (NEW.backend_id, '+9'); END"],
        ["DROP TRIGGER race"]),
    "postgresql": (
        ["CREATE FUNCTION pg_temp.race() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "IF NEW.identity = '+9' AND pg_trigger_depth() = 1 THEN "
         "INSERT INTO smsrouter_connection (backend_id, identity) "
         "VALUES (NEW.backend_id, '+9') ON CONFLICT DO NOTHING; END IF; RETURN NEW; END $$",
         "CREATE TRIGGER race BEFORE INSERT ON smsrouter_connection "
         "FOR EACH ROW EXECUTE FUNCTION pg_temp.race()"],
        ["DROP TRIGGER race ON smsrouter_connection", "DROP FUNCTION pg_temp.race()"]),
}


def test_a_number_another_process_made_meanwhile_is_found_not_duplicated(number):
    create, drop = RACE[db.vendor]
    with db.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    try:
        made = statements.connections_of(number.backend_id, ["+8", "+9"])
    finally:
        with db.cursor() as cursor:
            for sql in drop:
                cursor.execute(sql)
    assert set(made) == {"+8", "+9"}
    assert made["+9"].pk == Connection.objects.get(identity="+9").pk
    assert Connection.objects.filter(identity="+9").count() == 1


def test_a_database_that_cannot_return_inserted_rows_gets_the_orm(number, monkeypatch):
    """As MySQL: the same results, by bulk_create and a query."""
    monkeypatch.setattr(type(db.features), "can_return_rows_from_bulk_insert", False)
    records = [new(number, "a"), new(number, "b")]
    statements.insert(records)
    assert [(r.pk, r.text) for r in records] == list(
        Message.objects.order_by("pk").values_list("pk", "text"))
    made = statements.connections_of(number.backend_id, ["+1", "+2"])
    assert made["+1"].pk == number.pk
    assert made["+2"].pk == Connection.objects.get(identity="+2").pk


def _stale(number):
    """`number` as a cache would hold it, while another process linked a contact to its
    row and opened a session for it."""
    from smsrouter.models import Contact

    contact = Contact.objects.create(language="sw")
    Connection.objects.filter(pk=number.pk).update(contact=contact, in_session=True)
    assert (number.contact_id, number.in_session) == (None, False)
    return contact


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "orm"])
def test_an_incoming_insert_reads_its_connections_row_afresh(number, monkeypatch, returning):
    if not returning:
        monkeypatch.setattr(type(db.features), "can_return_rows_from_bulk_insert", False)
    number.contact = None  # a cached related object, which must not outlive the change
    contact = _stale(number)
    record = new(number)
    assert not connectionrow.connection_read(record)
    statements.insert([record])
    assert connectionrow.connection_read(record)
    assert (number.contact_id, number.in_session) == (contact.pk, True)
    assert number.contact == contact


def test_an_incoming_insert_reads_the_row_in_the_same_statement(number, django_assert_num_queries):
    _stale(number)
    with django_assert_num_queries(1):
        statements.insert([new(number), new(number, "again")])
    assert number.in_session


def test_an_outgoing_insert_reads_no_connection(number):
    _stale(number)
    record = new(number, direction="out", status="queued")
    statements.insert([record])
    assert not connectionrow.connection_read(record)
    assert (number.contact_id, number.in_session) == (None, False)
