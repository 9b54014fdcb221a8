"""Running the apps' `@periodic` jobs once per period, across every process that could.

Every host that keeps time (each server process's scheduler, `smsrouter_sender`, Celery
beat's task) asks for a job's turn before running it. A turn is a lease row in the
database, taken by an UPDATE that only one process can win until the next period is due:
so one timer per process still runs each job once per period, never once per process.
"""

import inspect
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from django.utils import timezone

from smsrouter.models import Lease
from smsrouter.router import Router, loaded_apps, periodic_jobs, resolve_app

logger = logging.getLogger(__name__)

#: How early a turn may be taken, as a share of the period (at most a second): timers
#: of different processes, and beat's, drift by milliseconds.
EARLY = 0.1


@dataclass(frozen=True)
class Job:
    app_path: str
    method: str
    every: float

    @property
    def name(self) -> str:
        return f"{self.app_path}.{self.method}"


def jobs() -> list[Job]:
    """Every periodic method of SMSROUTER_APPS."""
    return [
        Job(f"{bound.app_class.__module__}.{bound.app_class.__qualname__}", method, every)
        for bound in loaded_apps()
        for method, every in periodic_jobs(bound.app_class)
    ]


def take_turn(name: str, every: float, now: datetime | None = None) -> datetime | None:
    """This process's turn at the job, if it is due: the time the next turn is due then,
    or None when another process has this period."""
    now = now or timezone.now()
    slack = timedelta(seconds=min(every * EARLY, 1.0))
    Lease.objects.bulk_create([Lease(name=name, due_at=now)], ignore_conflicts=True)
    next_due = now + timedelta(seconds=every)
    won = Lease.objects.filter(name=name, due_at__lte=now + slack).update(
        due_at=next_due, holder=f"{socket.gethostname()}:{os.getpid()}"[:100])
    return next_due if won else None


def next_turn(name: str) -> datetime | None:
    """When the job's next turn is due, as its lease says."""
    return Lease.objects.filter(name=name).values_list("due_at", flat=True).first()


def run(app_path: str, method: str) -> None:
    """Run one job on a fresh instance of its app, as a router would hold it."""
    job = getattr(resolve_app(app_path)(Router([])), method)
    if inspect.iscoroutinefunction(job):
        async_to_sync(job)()
    else:
        job()


def run_if_due(app_path: str, method: str, every: float) -> bool:
    """Take the job's turn and run it; whether this call ran it."""
    if take_turn(f"{app_path}.{method}", every) is None:
        return False
    run(app_path, method)
    return True
