"""What the database itself guarantees."""

import pytest
from django.db import IntegrityError

from smsrouter.models import Backend, Connection, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection():
    return Connection.objects.create(backend=Backend.objects.create(name="a"), identity="+1")


def message(connection, **values):
    return Message.objects.create(
        **{"direction": "in", "backend": connection.backend, "connection": connection,
           "text": "hi", "status": "received", **values}
    )


def test_a_connection_is_unique_per_backend_and_identity(connection):
    with pytest.raises(IntegrityError):
        Connection.objects.create(backend=connection.backend, identity="+1")


def test_the_same_identity_on_two_backends_is_two_connections(connection):
    Connection.objects.create(backend=Backend.objects.create(name="b"), identity="+1")
    assert Connection.objects.filter(identity="+1").count() == 2


def test_an_external_id_is_unique_per_backend_and_direction(connection):
    message(connection, external_id="x")
    message(connection, external_id="x", direction="out", status="queued")
    with pytest.raises(IntegrityError):
        message(connection, external_id="x")


def test_messages_without_external_id_are_not_constrained(connection):
    message(connection)
    message(connection)
    assert Message.objects.count() == 2


def test_str_says_who_and_what(connection):
    assert str(message(connection, text="hello there")) == "← +1: hello there"
    assert str(connection) == "+1 via a"
