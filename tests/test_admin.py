"""The admin for support people: find a message by number or text and filter it; read and
write one number's conversation; the dashboard's figures and charts; retry failed sends
and cancel queued ones."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

import smsrouter
from smsrouter import admin_actions, admin_views, charts, dashboard, sender
from smsrouter.models import Backend, Connection, Direction, Message, Status
from smsrouter.signals import messages_changed
from tests import backends as test_backends

pytestmark = pytest.mark.django_db


@pytest.fixture
def messages(settings, django_capture_on_commit_callbacks):
    """Two conversations; the reply through the down gateway failed (no attempts left)."""
    settings.INSTALLED_BACKENDS = {
        "a": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
        "b": {"ENGINE": "tests.backends.DownBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.incoming("a", "+255700000001", "echo malaria case")
        smsrouter.incoming("b", "+255711111111", "echo stock out")


def changelist(admin_client, **params):
    response = admin_client.get("/admin/smsrouter/message/", params)
    assert response.status_code == 200
    return [str(m) for m in response.context["cl"].result_list]


def test_search_by_identity_and_by_text(admin_client, messages):
    assert changelist(admin_client, q="+255711") == ["→ +255711111111: stock out",
                                                    "← +255711111111: echo stock out"]
    assert changelist(admin_client, q="echo malaria") == ["← +255700000001: echo malaria case"]


def test_filter_by_status_backend_and_direction(admin_client, messages):
    assert changelist(admin_client, status__exact="failed") == ["→ +255711111111: stock out"]
    assert changelist(admin_client, status__exact="sent") == ["→ +255700000001: malaria case"]
    assert len(changelist(admin_client, backend__id__exact=Backend.objects.get(name="a").pk)) == 2
    assert len(changelist(admin_client, direction__exact="in")) == 2


@pytest.mark.parametrize("model", ["backend", "connection", "contact", "message"])
def test_every_model_has_working_admin_pages(admin_client, messages, model):
    assert admin_client.get(f"/admin/smsrouter/{model}/").status_code == 200
    assert admin_client.get(f"/admin/smsrouter/{model}/add/").status_code == 200
    assert admin_client.get(f"/admin/smsrouter/{model}/1/change/").status_code in (200, 302)


# --- actions ----------------------------------------------------------------------------

@pytest.fixture
def changes():
    """The rows each messages_changed signal carried, one list per signal."""
    seen: list[list[tuple[int, str]]] = []

    def receiver(sender, messages, **kwargs):
        seen.append(sorted((m.pk, m.status) for m in messages))

    messages_changed.connect(receiver)
    yield seen
    messages_changed.disconnect(receiver)


def act(client, action, ids):
    response = client.post("/admin/smsrouter/message/",
                           {"action": action, "_selected_action": [str(pk) for pk in ids]},
                           follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_retry_resends_a_failed_message_through_its_backend_and_skips_the_rest(
        admin_client, messages, settings, django_capture_on_commit_callbacks, changes):
    """The gateway is back: the failed reply goes out again, with its attempts counted
    afresh and its error cleared; the incoming message and the sent reply are skipped."""
    failed = Message.objects.get(status=Status.FAILED)
    assert (failed.attempts, failed.error) == (1, "gateway answered 503")
    settings.INSTALLED_BACKENDS = {**settings.INSTALLED_BACKENDS,
                                   "b": {"ENGINE": "tests.backends.RecordingBackend"}}
    test_backends.calls.clear()
    others = list(Message.objects.exclude(pk=failed.pk).filter(connection=failed.connection)
                  .values_list("pk", flat=True)) + [Message.objects.get(status=Status.SENT).pk]
    with django_capture_on_commit_callbacks(execute=True):
        notes = act(admin_client, "retry_failed", [failed.pk, *others])
    assert notes == ["1 message(s) queued again to send. 2 skipped: not failed outgoing "
                     "messages (or of a backend no longer installed)."]
    assert test_backends.calls == [("b", [("+255711111111", "stock out")])]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error, failed.external_id) == (
        Status.SENT, 1, "", f"gw-{failed.pk}")
    assert failed.sent_at is not None
    assert changes[0] == [(failed.pk, Status.QUEUED)]  # the retry, then the sender's outcome
    assert changes[-1] == [(failed.pk, Status.SENT)]


def test_retry_of_a_backend_no_longer_installed_is_skipped(admin_client, messages, settings):
    failed = Message.objects.get(status=Status.FAILED)
    settings.INSTALLED_BACKENDS = {"a": settings.INSTALLED_BACKENDS["a"]}
    assert act(admin_client, "retry_failed", [failed.pk]) == [
        "0 message(s) queued again to send. 1 skipped: not failed outgoing messages (or of "
        "a backend no longer installed)."]
    assert Message.objects.get(pk=failed.pk).status == Status.FAILED


def test_cancel_fails_queued_messages_and_leaves_one_the_sender_has_claimed(
        admin_client, queued, changes):
    """Only rows still queued are cancelled, with the user and the time in the error; a
    row already "sending" goes out as it would have, and an incoming one is untouched."""
    first, second, third = smsrouter.send("reminder", ["+255700000001", "+255700000002",
                                                      "+255700000003"], backend="gw")
    Message.objects.filter(pk=second.id).update(status=Status.SENDING)
    inbound = smsrouter.incoming("gw", "+255700000009", "hello")
    changes.clear()
    notes = act(admin_client, "cancel_queued", [first.id, second.id, third.id, inbound.id])
    assert notes == ["2 queued message(s) cancelled. 2 skipped: no longer queued."]
    rows = {m.pk: m for m in Message.objects.all()}
    assert rows[second.id].status == Status.SENDING
    assert rows[inbound.id].status == Status.RECEIVED  # left for a worker to route
    for pk in (first.id, third.id):
        assert rows[pk].status == Status.FAILED
        assert re.fullmatch(r"cancelled by admin in the admin at \d{4}-\d\d-\d\d "
                            r"\d\d:\d\d:\d\d\.\d{6} UTC", rows[pk].error), rows[pk].error
    assert changes == [[(first.id, Status.FAILED), (third.id, Status.FAILED)]]


def test_a_cancelled_message_is_not_sent_by_a_sender_that_had_it_in_hand(queued):
    """The sender's claim wants "queued": a row cancelled after it was handed on is
    skipped when the sender comes to it."""
    (message,) = smsrouter.send("reminder", "+255700000001", backend="gw")
    admin_actions.cancel_queued([message.id], "support")
    assert sender.send_blocking([message]).claimed == 0
    assert queued == []


def test_the_actions_need_the_change_permission(client, messages):
    client.force_login(staff("view_message"))
    response = client.get("/admin/smsrouter/message/")
    assert response.status_code == 200
    assert "retry_failed" not in response.content.decode()
    client.force_login(staff("view_message", "change_message"))
    page = client.get("/admin/smsrouter/message/").content.decode()
    assert "Retry selected failed outgoing messages" in page
    assert "Cancel selected queued messages" in page


# --- the message list ------------------------------------------------------------------

def test_the_list_cuts_long_texts_and_links_each_number_to_its_conversation(admin_client, messages):
    long_text = "echo " + "x" * 100
    smsrouter.incoming("a", "+255700000001", long_text)
    page = admin_client.get("/admin/smsrouter/message/").content.decode()
    connection = Connection.objects.get(identity="+255700000001")
    assert f'<span title="{long_text}">{long_text[:59]}…</span>' in page
    assert f'<a href="/admin/smsrouter/connection/{connection.pk}/conversation/" ' in page
    assert "smsrouter/admin.css" in page
    assert '<a href="/admin/smsrouter/message/dashboard/">Dashboard</a>' in page


def test_the_texts_in_the_list_are_escaped(admin_client, messages):
    smsrouter.incoming("a", "+255700000001", '<b onclick="x">"hi"</b>')
    page = admin_client.get("/admin/smsrouter/message/").content.decode()
    assert "<b onclick" not in page
    assert "&lt;b onclick=&quot;x&quot;&gt;&quot;hi&quot;&lt;/b&gt;" in page


# --- the conversation ------------------------------------------------------------------

def staff(*permissions: str) -> User:
    user = User.objects.create_user(f"staff-{'-'.join(permissions) or 'none'}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="smsrouter", codename__in=permissions))
    return user


def conversation_url(identity: str) -> str:
    return f"/admin/smsrouter/connection/{Connection.objects.get(identity=identity).pk}/conversation/"


def test_the_conversation_shows_the_thread_in_order_with_statuses_errors_and_times(
        admin_client, messages):
    """Both directions, oldest first, each with its status and times; the failed reply
    with its error; another number's messages are not there."""
    response = admin_client.get(conversation_url("+255711111111"))
    assert response.status_code == 200
    bubbles = response.context["bubbles"]
    assert [(m.direction, m.text, m.status) for m in bubbles] == [
        ("in", "echo stock out", Status.HANDLED), ("out", "stock out", Status.FAILED)]
    page = response.content.decode()
    assert page.index("echo stock out") < page.index("gateway answered 503")
    assert 'class="status-badge status-failed">failed<' in page
    assert "malaria" not in page
    reply = Message.objects.get(text="malaria case")
    sent = admin_client.get(conversation_url("+255700000001")).content.decode()
    assert f'sent <time datetime="{reply.sent_at.isoformat()}">' in sent


def test_the_connection_page_links_to_its_conversation(admin_client, messages):
    connection = Connection.objects.get(identity="+255700000001")
    page = admin_client.get(f"/admin/smsrouter/connection/{connection.pk}/change/").content.decode()
    assert f'href="/admin/smsrouter/connection/{connection.pk}/conversation/">Conversation</a>' in page


def test_reading_a_conversation_takes_view_message_and_writing_add_message(client, messages):
    url = conversation_url("+255700000001")
    client.force_login(staff())
    assert client.get(url).status_code == 403
    client.force_login(staff("view_message"))
    response = client.get(url)
    assert response.status_code == 200 and not response.context["can_send"]
    assert "<textarea" not in response.content.decode()
    assert client.post(url, {"text": "hi"}).status_code == 403
    client.force_login(staff("view_message", "add_message"))
    assert client.get(url).context["can_send"]
    assert Message.objects.filter(text="hi").count() == 0
    assert client.get("/admin/smsrouter/connection/999999/conversation/").status_code == 404


def test_the_form_sends_through_the_outbox_and_comes_back_to_the_thread(
        client, messages, django_capture_on_commit_callbacks):
    """A post stores the message, the sender sends it once committed, the page redirects
    to the thread at the new bubble (a reload sends nothing), and the admin's history
    names who sent it."""
    user = staff("view_message", "add_message")
    client.force_login(user)
    url = conversation_url("+255700000001")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"text": "Your results are ready"})
    sent = Message.objects.get(text="Your results are ready")
    assert response.status_code == 302
    assert response["Location"] == f"{url}#message-{sent.pk}"
    assert (sent.direction, sent.status, sent.connection.identity) == (
        Direction.OUT, Status.SENT, "+255700000001")
    entry = LogEntry.objects.get(object_id=str(sent.pk))
    assert (entry.user, entry.action_flag) == (user, ADDITION)
    page = client.get(url).content.decode()
    assert f'id="message-{sent.pk}"' in page and "Message to +255700000001 stored" in page


def test_the_form_refuses_an_empty_text_and_a_post_without_its_csrf_token(messages):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff("view_message", "add_message"))
    url = conversation_url("+255700000001")
    assert csrf_client.post(url, {"text": "forged"}).status_code == 403
    token = csrf_client.get(url).context["csrf_token"]
    response = csrf_client.post(url, {"text": "   ", "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200
    assert response.context["form"].errors == {"text": ["This field is required."]}
    assert not Message.objects.filter(text__in=["forged", "   "]).exists()


def test_a_long_thread_is_paged_newest_page_first(admin_client, messages):
    connection = Connection.objects.get(identity="+255700000001")
    Message.objects.bulk_create([
        Message(direction=Direction.IN, backend=connection.backend, connection=connection,
                text=f"n{n}", status=Status.HANDLED) for n in range(120)])
    first = admin_client.get(conversation_url("+255700000001")).context
    texts = [m.text for m in first["bubbles"]]
    assert len(texts) == admin_views.THREAD_PAGE and texts[-1] == "n119" and texts[0] == "n70"
    assert first["live"] and first["page"].paginator.num_pages == 3
    last = admin_client.get(conversation_url("+255700000001"), {"page": 3}).context
    assert [m.text for m in last["bubbles"]][:3] == ["echo malaria case", "malaria case", "n0"]
    assert not last["live"]


def test_the_page_polls_for_new_messages_and_for_those_still_on_their_way(admin_client, messages):
    connection = Connection.objects.get(identity="+255700000001")
    shown = Message.objects.filter(connection=connection).order_by("pk")
    last_id = shown.last().pk
    url = f"{conversation_url('+255700000001')}messages/"
    assert admin_client.get(url, {"after": last_id, "pending": ""}).json() == {"messages": []}
    Message.objects.filter(pk=last_id).update(status=Status.QUEUED)
    (reply,) = smsrouter.send("later", connection, at=timezone.now() + timedelta(hours=1))
    found = admin_client.get(url, {"after": last_id, "pending": str(last_id)}).json()["messages"]
    assert [(m["id"], m["status"], m["new"]) for m in found] == [
        (last_id, "queued", False), (reply.id, "queued", True)]
    assert 'data-pending="1"' in found[1]["html"] and ">later</p>" in found[1]["html"]


# --- the dashboard ---------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def stored(backend: str, direction: str, status: str, created_at: datetime, *,
           latency: timedelta | None = None, error: str = "") -> Message:
    """A message as if stored at `created_at` (and accepted `latency` after it)."""
    backend_row, _ = Backend.objects.get_or_create(name=backend)
    connection, _ = Connection.objects.get_or_create(backend=backend_row, identity="+255700000001")
    message = Message.objects.create(direction=direction, backend=backend_row,
                                     connection=connection, status=status, error=error)
    Message.objects.filter(pk=message.pk).update(
        created_at=created_at, sent_at=created_at + latency if latency else None)
    return message


@pytest.fixture
def history():
    """Known rows around NOW: two backends, both directions, some old enough to fall out."""
    out, inc = Direction.OUT, Direction.IN
    for minutes in (1, 10, 29):
        stored("a", inc, Status.HANDLED, NOW - timedelta(minutes=minutes))
    stored("a", out, Status.SENT, NOW - timedelta(hours=1), latency=timedelta(seconds=2))
    stored("a", out, Status.DELIVERED, NOW - timedelta(hours=1), latency=timedelta(seconds=4))
    stored("a", out, Status.FAILED, NOW - timedelta(hours=5), error="gateway answered 503")
    stored("b", out, Status.SENT, NOW - timedelta(hours=5), latency=timedelta(seconds=10))
    stored("b", out, Status.FAILED, NOW - timedelta(hours=30), error="gateway answered 503")
    stored("b", out, Status.FAILED, NOW - timedelta(days=3), error="rejected number")
    stored("b", out, Status.FAILED, NOW - timedelta(days=8), error="too old to count")
    stored("b", out, Status.QUEUED, NOW - timedelta(days=8))
    stored("a", out, Status.SENDING, NOW)


def test_hourly_counts_per_backend_over_24_hours(history):
    hours = dashboard.hourly(NOW)
    assert len(hours.starts) == 24
    assert hours.starts[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert hours.starts[0] == datetime(2026, 3, 9, 13, tzinfo=UTC)
    nonzero = {name: {n: c for n, c in enumerate(counts) if c}
               for name, counts in hours.counts.items()}
    assert nonzero == {"a": {23: 4, 22: 2, 18: 1}, "b": {18: 1}}
    hours_later = dashboard.hourly(NOW + timedelta(hours=1))
    assert hours_later.counts["a"][-1] == 0 and hours_later.counts["a"][-2] == 4  # SENDING at NOW


def test_daily_counts_per_backend_over_7_days(history):
    days = dashboard.daily(NOW)
    assert [start.date().isoformat() for start in days.starts] == [
        f"2026-03-{day:02d}" for day in range(4, 11)]
    assert days.counts == {"a": [0, 0, 0, 0, 0, 0, 7], "b": [0, 0, 0, 1, 0, 1, 1]}
    assert days.total == 10


def test_days_are_cut_in_the_project_time_zone(settings):
    """23:30 UTC on 9 March is already 10 March in Dar es Salaam (UTC+3)."""
    settings.TIME_ZONE = "Africa/Dar_es_Salaam"
    stored("a", Direction.IN, Status.HANDLED, datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
    with timezone.override("Africa/Dar_es_Salaam"):
        days = dashboard.daily(NOW)
        hours = dashboard.hourly(NOW)
    assert days.counts == {"a": [0, 0, 0, 0, 0, 0, 1]}
    assert days.starts[-1] == datetime(2026, 3, 9, 21, tzinfo=UTC)  # midnight there
    assert hours.counts["a"][hours.starts.index(datetime(2026, 3, 9, 23, tzinfo=UTC))] == 1


def test_failure_rates_outbox_latency_and_top_errors(history):
    day = dashboard.failure_rates(NOW - timedelta(hours=24))
    assert [(r.backend, r.finished, r.failed) for r in day] == [("a", 3, 1), ("b", 1, 0)]
    assert dashboard.overall(day).percent == 25.0
    week = dashboard.failure_rates(NOW - timedelta(days=7))
    assert [(r.backend, r.finished, r.failed) for r in week] == [("a", 3, 1), ("b", 3, 2)]
    assert dashboard.overall([]).percent is None
    assert dashboard.outbox_depth() == {"a": {"queued": 0, "sending": 1},
                                        "b": {"queued": 1, "sending": 0}}
    latency = dashboard.send_latency(NOW - timedelta(hours=24))
    assert [(row.backend, row.sample, row.median) for row in latency] == [
        ("a", 2, timedelta(seconds=3)), ("b", 1, timedelta(seconds=10))]
    assert dashboard.top_errors(NOW - timedelta(days=7)) == [
        ("gateway answered 503", 2), ("rejected number", 1)]


def test_the_dashboard_page_shows_the_figures(admin_client, messages):
    response = admin_client.get("/admin/smsrouter/message/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    for chart in ("chart-hourly", "chart-daily"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart}"' in page
    assert '<desc id="chart-daily-desc">4 messages in all; a: 2; b: 2</desc>' in page
    assert page.count('<rect class="bar"') == 4  # one bar per backend in each chart
    assert "<td>gateway answered 503</td>" in page.replace(' class="error-text"', "")
    assert "<td>all backends</td><td>2</td><td>1</td><td>50.0 %</td>" in page
    assert '<a href="/admin/smsrouter/message/dashboard/">SMS dashboard</a>' in (
        admin_client.get("/admin/smsrouter/").content.decode())


def test_the_dashboard_takes_view_message(client, messages):
    client.force_login(staff("view_connection"))
    assert client.get("/admin/smsrouter/message/dashboard/").status_code == 403
    client.force_login(staff("view_message"))
    assert client.get("/admin/smsrouter/message/dashboard/").status_code == 200


# --- charts ----------------------------------------------------------------------------

@pytest.mark.parametrize(("largest", "scale"), [(0, (1, 1)), (1, (1, 1)), (3, (3, 1)),
                                                (7, (8, 2)), (10, (10, 5)), (93, (100, 50)),
                                                (1234, (1500, 500))])
def test_the_y_axis_has_round_steps(largest, scale):
    assert charts.nice_scale(largest) == scale


def test_a_chart_stacks_its_series_and_escapes_every_text():
    svg = charts.stacked_bars("c", "Per <hour>", ["1h", "2h"], [
        charts.Series("a&b", [2, 0]), charts.Series("<script>", [1, 3])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert '<title id="c-title">Per &lt;hour&gt;</title>' in svg
    bars = re.findall(r'<rect class="bar" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" '
                      r'height="([\d.]+)"><title>([^<]*)</title>', svg)
    assert [title for *_, title in bars] == [
        "1h: 2 messages on a&amp;b", "1h: 1 messages on &lt;script&gt;",
        "2h: 3 messages on &lt;script&gt;"]
    (x1, y1, h1), (x2, y2, h2), (_, y3, h3) = [tuple(map(float, bar[:3])) for bar in bars]
    assert x1 == x2 and y1 == y2 + h2  # the second layer sits on the first
    assert float(y3) + float(h3) == y1 + h1  # both columns stand on the axis
    assert h3 == h1 + h2  # 3 is as tall as 2 + 1


def test_an_empty_chart_says_so():
    svg = charts.stacked_bars("c", "Nothing", ["1h", "2h"], [])
    assert "No messages in this period." in svg and 'class="bar"' not in svg
