"""/metrics: Prometheus's text format, the same answer from any process.

Two kinds of figure, each read where it is true:

* State (messages by status, the outbox, heartbeats, SMPP binds) is read from the
  database at scrape time by `DatabaseCollector`, so every server process and host
  answers alike however many run, with nothing shared but the database. Each query is
  bounded by an index: messages by status only within SMSROUTER_METRICS_WINDOW (through
  created_at), the outbox and waiting inbound through the status indexes, so a scrape
  never reads the whole table.
* Events (routing time, send time) are histograms (`smsrouter.timings`) observed by the
  process that did the work, a few microseconds each and no SQL. With PROMETHEUS_MULTIPROC_DIR set (before the
  process starts: prometheus_client reads it at import) every process on a host writes
  its own file there and a scrape merges them all; without it, a scrape shows the
  histograms of the process that answered.

Readers are staff users, or whoever presents SMSROUTER_METRICS_TOKEN.
"""

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import DatabaseError, InterfaceError
from django.db.models import Case, Count, Min, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from smsrouter import conf, heartbeat
from smsrouter.timings import EVENTS
from smsrouter.models import Backend, Direction, Heartbeat, Message, Status

logger = logging.getLogger(__name__)

class DatabaseCollector(Collector):
    """The figures that are state, read from the database when scraped."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("smsrouter_database_up",
                               "1 if this scrape could read the database, else 0.")
        try:
            families = list(self._read(timezone.now()))
        except (DatabaseError, InterfaceError):  # down, or a connection that was closed
            logger.exception("/metrics could not read the database")
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
        took = GaugeMetricFamily("smsrouter_scrape_database_seconds",
                                 "How long this scrape's database queries took.")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _read(self, now: datetime) -> Iterator[Metric]:
        names = dict(Backend.objects.values_list("pk", "name"))
        yield from self._recent(now, names)
        yield from self._outbox(now, names)
        yield from self._inbound(now, names)
        yield from self._heartbeats(now)

    def _recent(self, now: datetime, names: dict[int, str]) -> Iterator[Metric]:
        window = conf.get("SMSROUTER_METRICS_WINDOW")
        yield _gauge("smsrouter_metrics_window_seconds",
                     "SMSROUTER_METRICS_WINDOW: how far back smsrouter_recent_* look.", window)
        counts = GaugeMetricFamily(
            "smsrouter_recent_messages",
            "Messages created within the window, by backend, direction and their status now.",
            labels=["backend", "direction", "status"])
        retries = GaugeMetricFamily(
            "smsrouter_recent_send_retries",
            "Send attempts beyond the first, of the outgoing messages created within the window.",
            labels=["backend"])
        retried: dict[str, int] = {}
        # The window as a range of ids from its first row on (created_at's index finds it),
        # grouped by direction first: SQLite, to save a sort, walks whole any index that
        # the GROUP BY starts with (backend's, status's) rather than the range.
        recent = Message.objects.filter(created_at__gte=now - timedelta(seconds=window))
        first = recent.order_by("created_at").values_list("pk", flat=True).first()
        rows = [] if first is None else (
            recent.filter(pk__gte=first).values_list("direction", "status", "backend_id")
            .annotate(n=Count("pk"), tries=Sum("attempts", filter=Q(attempts__gt=1)),
                      retried=Count("pk", filter=Q(attempts__gt=1)))
            .order_by())
        for direction, status, backend_id, n, tries, again in rows:
            name = names.get(backend_id, str(backend_id))
            counts.add_metric([name, direction, status], n)
            if direction == Direction.OUT:
                retried[name] = retried.get(name, 0) + (tries or 0) - again
        for name in sorted(set(names.values()) | set(retried)):
            retries.add_metric([name], retried.get(name, 0))
        yield counts
        yield retries

    def _outbox(self, now: datetime, names: dict[int, str]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "smsrouter_outbox_messages",
            "Outgoing messages not yet sent: queued and due, queued for later, or sending.",
            labels=["backend", "state"])
        oldest = GaugeMetricFamily(
            "smsrouter_outbox_oldest_due_age_seconds",
            "How long the oldest due, queued message has waited (0 when none waits).",
            labels=["backend"])
        state = Case(When(status=Status.SENDING, then=Value("sending")),
                     When(due_at__gt=now, then=Value("scheduled")), default=Value("due"))
        counts = {(name, kind): 0 for name in names.values()
                  for kind in ("due", "scheduled", "sending")}
        waited = dict.fromkeys(names.values(), 0.0)
        for backend_id, kind, n, since in (
                Message.objects.filter(status__in=[Status.QUEUED, Status.SENDING])
                .annotate(state=state).values_list("backend_id", "state")
                .annotate(n=Count("pk"), since=Min(Coalesce("due_at", "created_at")))
                .order_by()):
            name = names.get(backend_id, str(backend_id))
            counts[(name, kind)] = n
            if kind == "due":
                waited[name] = max(0.0, (now - since).total_seconds())
        for (name, kind), n in sorted(counts.items()):
            depth.add_metric([name, kind], n)
        for name, seconds in sorted(waited.items()):
            oldest.add_metric([name], seconds)
        yield depth
        yield oldest

    def _inbound(self, now: datetime, names: dict[int, str]) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "smsrouter_inbound_waiting",
            "Inbound messages stored and not yet routed (status received).", labels=["backend"])
        oldest = GaugeMetricFamily(
            "smsrouter_inbound_oldest_waiting_age_seconds",
            "How long the oldest inbound message not yet routed has waited.", labels=["backend"])
        found = {backend_id: (n, since) for backend_id, n, since in (
            Message.objects.filter(status=Status.RECEIVED).values_list("backend_id")
            .annotate(n=Count("pk"), since=Min("updated_at")).order_by())}
        for backend_id, name in sorted(names.items(), key=lambda item: item[1]):
            n, since = found.get(backend_id, (0, now))
            waiting.add_metric([name], n)
            oldest.add_metric([name], max(0.0, (now - since).total_seconds()))
        yield waiting
        yield oldest

    def _heartbeats(self, now: datetime) -> Iterator[Metric]:
        at = GaugeMetricFamily(
            "smsrouter_heartbeat_timestamp_seconds",
            "When each heartbeat was last written (Unix time), and by which host:pid.",
            labels=["name", "holder"])
        age = GaugeMetricFamily("smsrouter_heartbeat_age_seconds",
                                "Seconds since each heartbeat was last written.", labels=["name"])
        bound = GaugeMetricFamily(
            "smsrouter_smpp_bound",
            "1 if the SMPP backend's bind is up and its holder alive, else 0.", labels=["backend"])
        changed = GaugeMetricFamily(
            "smsrouter_smpp_bind_changed_timestamp_seconds",
            "When the SMPP bind last changed state (Unix time).", labels=["backend", "state"])
        max_age = conf.get("SMSROUTER_HEARTBEAT_MAX_AGE")
        for row in Heartbeat.objects.order_by("name"):
            seconds = max(0.0, (now - row.beat_at).total_seconds())
            at.add_metric([row.name, row.holder], row.beat_at.timestamp())
            age.add_metric([row.name], seconds)
            if row.name.startswith(heartbeat.BIND_PREFIX):
                backend = row.name.removeprefix(heartbeat.BIND_PREFIX)
                link = row.state.get("state", "unknown")
                bound.add_metric([backend], int(link == "bound" and seconds <= max_age))
                if since := _parsed(row.state.get("since")):
                    changed.add_metric([backend, link], since.timestamp())
        yield from (at, age, bound, changed)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _parsed(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def registry() -> CollectorRegistry:
    """What a scrape reads: the database's figures, and the histograms of every process
    on this host (multiprocess mode) or of this one."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(scraped)
    else:
        scraped.register(_Events())
    return scraped


class _Events(Collector):
    def collect(self) -> Iterator[Metric]:
        return EVENTS.collect()


def allowed(request: HttpRequest) -> HttpResponse | None:
    """None if the request may read /metrics, else the answer refusing it: 401 (with a
    WWW-Authenticate) for a missing or wrong token when one is set, 403 otherwise."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return None
    token = conf.get("SMSROUTER_METRICS_TOKEN")
    presented = _presented(request)
    if token and presented is not None and hmac.compare_digest(presented.encode(), str(token).encode()):
        return None
    if not token:
        return JsonResponse({"error": "Staff only: log in, or set SMSROUTER_METRICS_TOKEN."},
                            status=403)
    refused = JsonResponse({"error": "A valid metrics token is required."}, status=401)
    refused["WWW-Authenticate"] = ('Bearer realm="smsrouter metrics"' if presented is None
                                   else 'Bearer realm="smsrouter metrics", error="invalid_token"')
    return refused


def _presented(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.GET.get("token")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's text exposition format (OpenMetrics when the scraper asks for it), for
    staff or the token's holder."""
    if (refused := allowed(request)) is not None:
        return refused
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encode(registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
