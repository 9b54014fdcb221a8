"""/metrics: Prometheus's text format (read back with prometheus-client's own parser), the
same figures from any process, and only for staff or the token's holder."""

import asyncio
import urllib.request
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connections
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

import smsrouter
from smsrouter import heartbeat
from smsrouter.addressbook import get_connection
from smsrouter.backends import backends
from smsrouter.models import Direction, Heartbeat, Message, Status
from tests.stack import Stack
from tests.test_faults import assert_acknowledged, post_all, settled

TOKEN = "s3cret-scrape-token"
DEADLINE = 10  # seconds: the longest a test waits, never how long it waits


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and labels, as prometheus-client parses it."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def value(found: dict, metric: str, **labels: str) -> float:
    return found[(metric, tuple(sorted(labels.items())))]


@pytest.fixture
def scrape(client, settings):
    settings.SMSROUTER_METRICS_TOKEN = TOKEN

    def read() -> dict:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(response.content.decode())

    return read


def message(backend: str, direction: str, status: str, **fields) -> Message:
    connection = get_connection(backend, "+255700000001")
    return Message.objects.create(direction=direction, backend=connection.backend,
                                  connection=connection, text="hi", status=status, **fields)


@pytest.mark.django_db
def test_messages_of_the_window_by_backend_direction_and_status(scrape, settings):
    settings.SMSROUTER_METRICS_WINDOW = 600
    for status in (Status.HANDLED, Status.HANDLED, Status.FAILED):
        message("kannel", Direction.IN, status)
    message("twilio", Direction.OUT, Status.SENT, attempts=3)
    message("twilio", Direction.OUT, Status.DELIVERED, attempts=1)
    message("twilio", Direction.OUT, Status.FAILED, attempts=2)
    old = message("kannel", Direction.IN, Status.HANDLED)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    found = scrape()
    assert value(found, "smsrouter_metrics_window_seconds") == 600
    assert value(found, "smsrouter_recent_messages", backend="kannel", direction="in", status="handled") == 2
    assert value(found, "smsrouter_recent_messages", backend="kannel", direction="in", status="failed") == 1
    assert value(found, "smsrouter_recent_messages", backend="twilio", direction="out", status="sent") == 1
    assert value(found, "smsrouter_recent_send_retries", backend="twilio") == 2 + 1
    assert value(found, "smsrouter_recent_send_retries", backend="kannel") == 0
    assert value(found, "smsrouter_database_up") == 1


@pytest.mark.django_db
def test_outbox_depth_and_the_age_of_the_oldest_due_row(scrape):
    now = timezone.now()
    message("kannel", Direction.OUT, Status.QUEUED)
    message("kannel", Direction.OUT, Status.QUEUED, due_at=now - timedelta(seconds=120))
    message("kannel", Direction.OUT, Status.QUEUED, due_at=now + timedelta(hours=1))
    message("kannel", Direction.OUT, Status.SENDING)
    message("twilio", Direction.IN, Status.RECEIVED)
    found = scrape()
    assert value(found, "smsrouter_outbox_messages", backend="kannel", state="due") == 2
    assert value(found, "smsrouter_outbox_messages", backend="kannel", state="scheduled") == 1
    assert value(found, "smsrouter_outbox_messages", backend="kannel", state="sending") == 1
    assert value(found, "smsrouter_outbox_messages", backend="twilio", state="due") == 0
    assert 120 <= value(found, "smsrouter_outbox_oldest_due_age_seconds", backend="kannel") < 120 + DEADLINE
    assert value(found, "smsrouter_outbox_oldest_due_age_seconds", backend="twilio") == 0
    assert value(found, "smsrouter_inbound_waiting", backend="twilio") == 1
    assert value(found, "smsrouter_inbound_waiting", backend="kannel") == 0


@pytest.mark.django_db
def test_heartbeats_and_smpp_binds(scrape, settings):
    settings.SMSROUTER_HEARTBEAT_MAX_AGE = 60
    at = timezone.now() - timedelta(seconds=30)
    heartbeat.beat(heartbeat.SCHEDULER, now=at)
    heartbeat.beat(heartbeat.bind_name("smsc-a"), {"state": "bound", "since": at.isoformat()})
    heartbeat.beat(heartbeat.bind_name("smsc-b"), {"state": "bound", "since": at.isoformat()},
                   now=at - timedelta(seconds=60))  # its holder died while bound
    heartbeat.beat(heartbeat.bind_name("smsc-c"), {"state": "reconnecting", "since": at.isoformat()})
    found = scrape()
    assert value(found, "smsrouter_heartbeat_timestamp_seconds", name="scheduler",
                 holder=heartbeat.holder()) == pytest.approx(at.timestamp())
    assert 30 <= value(found, "smsrouter_heartbeat_age_seconds", name="scheduler") < 30 + DEADLINE
    assert {name: value(found, "smsrouter_smpp_bound", backend=f"smsc-{name}") for name in "abc"} == {
        "a": 1, "b": 0, "c": 0}
    assert value(found, "smsrouter_smpp_bind_changed_timestamp_seconds", backend="smsc-c",
                 state="reconnecting") == pytest.approx(at.timestamp())


@pytest.mark.django_db(transaction=True)  # replies are sent once committed
def test_routing_and_send_times_are_histograms_of_this_process(scrape, settings):
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": "tests.backends.RecordingBackend"}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    before = scrape()
    smsrouter.incoming("gw", "+255700000001", "echo one")
    smsrouter.incoming("gw", "+255700000001", "echo two")
    after = scrape()

    def grew(name: str) -> float:
        return value(after, name, backend="gw") - before.get((name, (("backend", "gw"),)), 0)

    assert grew("smsrouter_routing_seconds_count") == 2
    assert grew("smsrouter_send_seconds_count") == 2  # one backend call per reply here
    assert value(after, "smsrouter_routing_seconds_bucket", backend="gw", le="+Inf") == \
        value(after, "smsrouter_routing_seconds_count", backend="gw")


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_a_figure_not_an_error(scrape, monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    message("kannel", Direction.IN, Status.HANDLED)
    with monkeypatch.context() as patched:
        patched.setattr(type(connections["default"]), "cursor", refused)
        found = scrape()
    assert value(found, "smsrouter_database_up") == 0
    assert not any(name.startswith("smsrouter_recent") for name, _ in found)


# Who may read it.
@pytest.mark.django_db
@pytest.mark.parametrize(("token", "headers", "query", "status"), [
    (None, {}, "", 403),                                          # staff only: log in
    (TOKEN, {}, "", 401),                                         # say what to present
    (TOKEN, {"Authorization": "Bearer wrong"}, "", 401),
    (TOKEN, {}, "?token=wrong", 401),
    (TOKEN, {"Authorization": f"Bearer {TOKEN}"}, "", 200),
    (TOKEN, {"Authorization": f"bearer {TOKEN}"}, "", 200),
    (TOKEN, {}, f"?token={TOKEN}", 200),
    (None, {"Authorization": "Bearer anything"}, "", 403),        # no token set: none works
])
def test_a_token_or_nothing(client, settings, token, headers, query, status):
    settings.SMSROUTER_METRICS_TOKEN = token
    response = client.get(f"/metrics{query}", headers=headers)
    assert response.status_code == status
    if status == 401:
        expected = 'Bearer realm="smsrouter metrics"'
        if headers or query:
            expected += ', error="invalid_token"'
        assert response["WWW-Authenticate"] == expected
    if status != 200:
        assert b"smsrouter_" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(("is_staff", "status"), [(True, 200), (False, 403)])
def test_a_staff_session_reads_it_without_a_token(client, settings, is_staff, status):
    settings.SMSROUTER_METRICS_TOKEN = None
    client.force_login(User.objects.create_user("ops", is_staff=is_staff))
    response = client.get("/metrics")
    assert response.status_code == status
    assert (b"smsrouter_database_up 1.0" in response.content) == (status == 200)


# The SMPP bind writes its own row, from the process that holds it.


async def bind_row() -> Heartbeat | None:
    return await Heartbeat.objects.filter(name=heartbeat.bind_name("smpp")).afirst()


async def until_row(done) -> Heartbeat:
    async with asyncio.timeout(DEADLINE):
        while (row := await bind_row()) is None or not done(row):
            await asyncio.sleep(0.01)
    return row


@pytest.mark.asyncio
async def test_the_bind_records_its_state_and_keeps_it_fresh(settings, smsc, async_db):
    settings.INSTALLED_BACKENDS = {"smpp": {
        "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1", "port": smsc.port,
        "system_id": "smsrouter", "password": "secret", "enquire_link": 0.05}}
    instance = backends["smpp"]
    await instance.activate()
    try:
        bound = await until_row(lambda row: row.state.get("state") == "bound")
        assert bound.holder == heartbeat.holder()
        since = bound.state["since"]
        fresher = await until_row(lambda row: row.beat_at > bound.beat_at)  # enquire_link answered
        assert fresher.state == {"state": "bound", "since": since}
    finally:
        await instance.deactivate()
    assert (await bind_row()).state["state"] == "unbound"


# Several processes: every server answers with the figures of all.
@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request, tmp_path, gateway):
    """Two demo servers on one database, sharing one PROMETHEUS_MULTIPROC_DIR."""
    (tmp_path / "metrics_settings.py").write_text(
        f"from tests.fault_settings import *  # noqa: F403\nSMSROUTER_METRICS_TOKEN = {TOKEN!r}\n")
    shared = tmp_path / "prometheus"
    shared.mkdir()
    stack = Stack(tmp_path, processing="inline", gateway_url=gateway.url, broker=None,
                  sqlite=tmp_path / "db.sqlite3" if request.param == "sqlite" else None,
                  settings="metrics_settings",
                  env={"PYTHONPATH": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(shared)})
    try:
        yield stack, [stack.start_web("web-a"), stack.start_web("web-b")], shared
    finally:
        stack.close()


def scraped(base: str) -> dict:
    request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return samples(response.read().decode())


@pytest.mark.processes
def test_each_server_shows_the_figures_of_both(two_servers):
    stack, servers, shared = two_servers
    n = 20
    assert_acknowledged(post_all(servers, range(n)))  # round robin: ten to each server
    stack.wait_for(settled(n), 30, "every reply sent")
    for base in servers:
        found = scraped(base)
        assert value(found, "smsrouter_recent_messages", backend="gw", direction="in", status="handled") == n
        assert value(found, "smsrouter_recent_messages", backend="gw", direction="out", status="sent") == n
        # Routed in the requests, ten by each process: merged from both processes' files.
        assert value(found, "smsrouter_routing_seconds_count", backend="gw") == n
        assert value(found, "smsrouter_send_seconds_count", backend="gw") >= 1
        assert value(found, "smsrouter_heartbeat_age_seconds", name="scheduler") < 60
    assert len(list(shared.glob("histogram_*.db"))) >= 2  # one file per process that observed
