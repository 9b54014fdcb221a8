"""smsrouter.parts: a long SMS's parts stored as they come, its text routed once and whole."""

import threading
from datetime import timedelta

import pytest
from django.db import connection as db, connections, transaction
from django.utils import timezone

from smsrouter import parts
from smsrouter.backends.base import Inbound, PartOf
from tests.backends import FormBackend
from smsrouter.exceptions import BadInbound
from smsrouter.models import Direction, Message, PendingPart

SENDER = "+255700000001"


class PartsBackend(FormBackend):
    """Posts a list: a whole message, and a part of a long one when the form has `ref`."""

    def parse_inbound(self, request):
        whole = super().parse_inbound(request)
        if "ref" not in request.POST:
            return [whole]
        return [Inbound("+2", "echo whole"), Inbound(whole.identity, whole.text, part=PartOf(
            request.POST["ref"], int(request.POST["total"]), int(request.POST["number"])))]


@pytest.fixture
def routed(settings):
    """EchoApp answers each routed message once: its replies count the routings."""
    settings.INSTALLED_BACKENDS = {"a": {"ENGINE": "tests.backends.RecordingBackend"}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.SMSROUTER_PARTS_TIMEOUT = 600

    def read() -> list[tuple[str, dict, list[str]]]:
        return [(m.text, m.fields, [r.text for r in m.responses.all()])
                for m in Message.objects.filter(direction=Direction.IN).order_by("pk")]
    return read


def part(text, number, total=3, reference="7", external_id=None, identity=SENDER):
    return Inbound(identity, text, external_id=external_id,
                   part=PartOf(reference, total, number))


@pytest.mark.django_db
def test_parts_in_order_are_routed_once_as_one_text(routed):
    assert parts.receive("a", part("echo he", 1)) is None
    assert parts.receive("a", part("llo wo", 2)) is None
    msg = parts.receive("a", part("rld", 3))
    assert msg is not None and msg.text == "echo hello world"
    assert routed() == [("echo hello world", {}, ["hello world"])]
    assert not PendingPart.objects.filter(used_at__isnull=True).exists()


@pytest.mark.django_db
def test_parts_out_of_order_are_joined_in_part_order(routed):
    for number, text in [(3, "rld"), (1, "echo he"), (2, "llo wo")]:
        parts.receive("a", part(text, number))
    assert routed() == [("echo hello world", {}, ["hello world"])]


@pytest.mark.django_db
def test_a_duplicate_part_is_stored_once(routed):
    parts.receive("a", part("echo he", 1, external_id="p1"))
    parts.receive("a", part("echo he", 1, external_id="p1"))
    parts.receive("a", part("echo he", 1))  # same number, no id: a retry too
    assert PendingPart.objects.count() == 1
    parts.receive("a", part("llo wo", 2))
    parts.receive("a", part("rld", 3))
    assert routed() == [("echo hello world", {}, ["hello world"])]


@pytest.mark.django_db
def test_a_part_retried_after_its_text_was_routed_is_neither_routed_nor_a_lone_part(routed):
    for number, text in [(1, "echo he"), (2, "llo wo"), (3, "rld")]:
        parts.receive("a", part(text, number))
    assert parts.receive("a", part("llo wo", 2)) is None
    assert parts.expire(timezone.now() + timedelta(seconds=601)) == 0
    assert routed() == [("echo hello world", {}, ["hello world"])]


@pytest.mark.django_db
def test_a_reference_used_again_later_starts_a_new_text(routed):
    for number, text in [(1, "echo a"), (2, "b"), (3, "c")]:
        parts.receive("a", part(text, number))
    for number, text in [(1, "echo x"), (2, "y"), (3, "z")]:
        parts.receive("a", part(text, number))
    assert [text for text, _, _ in routed()] == ["echo abc", "echo xyz"]


@pytest.mark.django_db
def test_references_are_scoped_per_sender(routed):
    parts.receive("a", part("echo a", 1, total=2))
    parts.receive("a", part("b", 2, total=2, identity="+255700000002"))
    assert routed() == []


@pytest.mark.django_db
def test_a_group_that_never_completes_is_stored_after_the_timeout(routed):
    parts.receive("a", part("rld", 3))
    parts.receive("a", part("echo he", 1))
    assert parts.expire(timezone.now() + timedelta(seconds=599)) == 0
    assert routed() == []
    assert parts.expire(timezone.now() + timedelta(seconds=601)) == 1
    assert routed() == [("echo herld", {"parts": {"missing": [2], "total": 3}}, ["herld"])]
    assert parts.expire(timezone.now() + timedelta(seconds=602)) == 0


@pytest.mark.django_db
def test_a_lone_part_is_stored_with_what_arrived(routed):
    parts.receive("a", part("ping", 2, total=2))
    parts.expire(timezone.now() + timedelta(seconds=601))
    assert routed() == [("ping", {"parts": {"missing": [1], "total": 2}}, ["pong"])]


@pytest.mark.django_db
def test_used_parts_are_purged_after_the_timeout(routed):
    parts.receive("a", part("echo a", 1, total=2))
    parts.receive("a", part("b", 2, total=2))
    assert PendingPart.objects.count() == 2
    parts.expire(timezone.now() + timedelta(seconds=601))
    assert PendingPart.objects.count() == 0


@pytest.mark.django_db
def test_the_whole_message_takes_its_first_parts_id_so_a_late_retry_is_not_routed(routed):
    parts.receive("a", part("echo a", 1, total=2, external_id="v-1"))
    parts.receive("a", part("b", 2, total=2, external_id="v-2"))
    parts.expire(timezone.now() + timedelta(seconds=601))  # used parts purged
    parts.receive("a", part("echo a", 1, total=2, external_id="v-1"))
    parts.expire(timezone.now() + timedelta(seconds=1202))
    assert [text for text, _, _ in routed()] == ["echo ab"]
    assert Message.objects.get(direction=Direction.IN).external_id == "v-1"


@pytest.mark.django_db
def test_parts_whose_fields_differ_keep_each_parts_fields(routed):
    parts.receive("a", Inbound(SENDER, "echo a", fields={"k": 1}, part=PartOf("9", 2, 1)))
    parts.receive("a", Inbound(SENDER, "b", fields={"k": 2}, part=PartOf("9", 2, 2)))
    [(_, fields, _)] = routed()
    assert fields == {"k": 1, "parts": {"fields": [{"k": 1}, {"k": 2}]}}


@pytest.mark.django_db
def test_a_part_no_database_can_store_is_refused_with_nothing_written(routed):
    with pytest.raises(BadInbound, match="identity"):
        parts.receive("a", part("x", 1, identity=""))
    assert not PendingPart.objects.exists()


@pytest.mark.django_db
def test_a_part_that_cannot_belong_to_a_text_is_a_message_of_its_own(routed):
    parts.receive("a", part("echo odd", 4, total=3))
    assert routed() == [("echo odd", {}, ["odd"])]


@pytest.mark.django_db
def test_the_webhook_stores_parts_and_routes_the_others_at_once(routed, settings, client):
    settings.INSTALLED_BACKENDS = {"a": {"ENGINE": "tests.test_parts.PartsBackend"}}
    for number, text in [(2, "there"), (1, "echo hi ")]:
        response = client.post("/backend/a/", {"identity": SENDER, "text": text, "ref": "3",
                                               "total": "2", "number": str(number)})
        assert response.status_code == 200
    assert routed() == [("echo whole", {}, ["whole"]), ("echo whole", {}, ["whole"]),
                        ("echo hi there", {}, ["hi there"])]


@pytest.mark.django_db
def test_the_webhook_refuses_a_bad_part_with_nothing_stored(routed, settings, client):
    settings.INSTALLED_BACKENDS = {"a": {"ENGINE": "tests.test_parts.PartsBackend"}}
    response = client.post("/backend/a/", {"identity": "+1\x00", "text": "x", "ref": "3",
                                           "total": "2", "number": "1"})
    assert response.status_code == 400 and "identity" in response.json()["error"]
    assert routed() == [] and not PendingPart.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_last_two_parts_in_two_concurrent_transactions_route_the_text_once(routed):
    """The first transaction stores part 1 and holds its commit until the second has
    either finished (the sender's row not locked: it counted one part, and the text would
    never complete) or waits on the lock; then both commit."""
    if db.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    parts.receive("a", part("echo he", 1))
    stored, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = parts.receive("a", part("llo wo", 2))
                stored.set()
                release.wait()
        finally:
            connections.close_all()

    def second() -> None:
        stored.wait()
        try:
            results["second"] = parts.receive("a", part("rld", 3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    stored.wait()
    while threads[1].is_alive() and not _waiting_on_a_lock():
        threads[1].join(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert routed() == [("echo hello world", {}, ["hello world"])]
    assert results["first"] is None and results["second"] is not None


def _waiting_on_a_lock() -> bool:
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
def test_every_sweep_stores_a_text_whose_parts_stopped_coming(routed):
    """Nothing to list or schedule: the sweep of every host (here `smsrouter_recover`'s)
    stores what waited past the timeout, as it routes stuck messages."""
    from smsrouter import recovery

    parts.receive("a", part("Hello ", 1, total=2))
    PendingPart.objects.update(received_at=timezone.now() - timedelta(seconds=601))
    recovery.recover(older_than=60)
    [(text, fields, _)] = routed()
    assert (text, fields["parts"]) == ("Hello ", {"missing": [2], "total": 2})
