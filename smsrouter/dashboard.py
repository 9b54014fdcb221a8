"""The figures of the admin's dashboard: how much went through, what failed and why, what
waits in the outbox, and how long the gateways took.

Every query is bounded: by a time window on Message.created_at (indexed), or by status
(the status indexes) for the outbox, which holds only what is still to send. Hours and
days are cut in the project's time zone by the database (Trunc), the same way on SQLite
and PostgreSQL, and the buckets that saw nothing are filled in here.
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.db.models import Count, F, Q
from django.db.models.functions import Substr, TruncDay, TruncHour
from django.utils import timezone

from smsrouter.models import Direction, Message, Status

#: How many of the newest sent messages the median latency is taken over: enough to be
#: steady, few enough to read in one go on a busy day.
LATENCY_SAMPLE = 5000
#: How many distinct error texts the dashboard lists, and how much of each it groups on.
TOP_ERRORS = 10
ERROR_PREFIX = 200
#: Outgoing messages whose fate is known: the failure rate is failed over these.
FINISHED = (Status.SENT, Status.DELIVERED, Status.FAILED)


@dataclass
class Histogram:
    """Counts per bucket (hour or day) per backend, buckets oldest first."""

    starts: list[datetime]
    counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts.values()))


@dataclass(frozen=True)
class FailureRate:
    backend: str
    finished: int
    failed: int

    @property
    def percent(self) -> float | None:
        """Failed, in per cent of those whose fate is known; None when none is."""
        return 100 * self.failed / self.finished if self.finished else None


@dataclass(frozen=True)
class Latency:
    backend: str
    sample: int
    median: timedelta


def hourly(now: datetime | None = None, hours: int = 24) -> Histogram:
    """Messages (in and out) per hour per backend over the last `hours` hours, this one
    included."""
    tz = timezone.get_current_timezone()
    current = timezone.localtime(now or timezone.now(), tz).replace(minute=0, second=0, microsecond=0)
    first = current.astimezone(UTC) - timedelta(hours=hours - 1)
    starts = [first + timedelta(hours=n) for n in range(hours)]
    return _histogram(starts, TruncHour("created_at", tzinfo=tz))


def daily(now: datetime | None = None, days: int = 7) -> Histogram:
    """Messages (in and out) per day per backend over the last `days` days, today included."""
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now or timezone.now(), tz).date()
    starts = [datetime.combine(today - timedelta(days=n), time(), tzinfo=tz).astimezone(UTC)
              for n in reversed(range(days))]
    return _histogram(starts, TruncDay("created_at", tzinfo=tz))


def _histogram(starts: list[datetime], bucket: TruncHour | TruncDay) -> Histogram:
    index = {start: n for n, start in enumerate(starts)}
    histogram = Histogram(starts)
    rows = (Message.objects.filter(created_at__gte=starts[0])
            .annotate(bucket=bucket).values("bucket", "backend__name")
            .annotate(count=Count("pk")).order_by())
    for row in rows:
        slot = index.get(row["bucket"].astimezone(UTC))
        if slot is None:  # a DST change moved a boundary: the bucket it falls in
            slot = max(n for n, start in enumerate(starts) if start <= row["bucket"])
        counts = histogram.counts.setdefault(row["backend__name"], [0] * len(starts))
        counts[slot] += row["count"]
    histogram.counts = dict(sorted(histogram.counts.items()))
    return histogram


def failure_rates(since: datetime) -> list[FailureRate]:
    """Per backend, of the outgoing messages created since `since` whose fate is known,
    how many failed; backends sorted by name."""
    rows = (Message.objects.filter(created_at__gte=since, direction=Direction.OUT,
                                   status__in=FINISHED)
            .values("backend__name")
            .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(status=Status.FAILED)))
            .order_by("backend__name"))
    return [FailureRate(row["backend__name"], row["finished"], row["failed"]) for row in rows]


def overall(rates: list[FailureRate]) -> FailureRate:
    return FailureRate("all", sum(r.finished for r in rates), sum(r.failed for r in rates))


def outbox_depth() -> dict[str, dict[str, int]]:
    """What waits to be sent now, by backend: {backend: {"queued": n, "sending": n}}."""
    depth: dict[str, dict[str, int]] = defaultdict(lambda: {Status.QUEUED: 0, Status.SENDING: 0})
    rows = (Message.objects.filter(direction=Direction.OUT,
                                   status__in=[Status.QUEUED, Status.SENDING])
            .values("backend__name", "status").annotate(count=Count("pk")).order_by())
    for row in rows:
        depth[row["backend__name"]][row["status"]] = row["count"]
    return {name: dict(counts) for name, counts in sorted(depth.items())}


def send_latency(since: datetime) -> list[Latency]:
    """The median time from stored to accepted by the gateway (sent_at - created_at) per
    backend, over the newest LATENCY_SAMPLE outgoing messages created since `since`.

    The median is taken here: neither SQLite nor Django has a portable one, and the
    sample is bounded."""
    rows = (Message.objects.filter(created_at__gte=since, direction=Direction.OUT,
                                   sent_at__isnull=False)
            .order_by("-created_at").values_list("backend__name", "created_at", "sent_at")
            [:LATENCY_SAMPLE])
    by_backend: dict[str, list[timedelta]] = defaultdict(list)
    for backend, created_at, sent_at in rows:
        by_backend[backend].append(max(sent_at - created_at, timedelta(0)))
    return [Latency(name, len(delays), statistics.median(delays))
            for name, delays in sorted(by_backend.items())]


def top_errors(since: datetime, limit: int = TOP_ERRORS) -> list[tuple[str, int]]:
    """The commonest error texts of messages failed since `since` (their first
    ERROR_PREFIX characters, so that a long gateway answer groups with its kind), with
    their counts, commonest first."""
    rows = (Message.objects.filter(created_at__gte=since, status=Status.FAILED)
            .exclude(error="").annotate(prefix=Substr(F("error"), 1, ERROR_PREFIX))
            .values("prefix").annotate(count=Count("pk")).order_by("-count", "prefix")[:limit])
    return [(row["prefix"], row["count"]) for row in rows]

