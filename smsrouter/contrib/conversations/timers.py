"""Reminders and expiry: what happens to a session while nobody answers.

`sweep()` runs as the ConversationsApp's `@periodic` job: in the server's scheduler in
inline mode (so `make run` alone keeps time), under Celery beat in Celery mode. It takes
`now` so that tests move the clock instead of waiting. Rows another transaction holds
(an answer being routed) are skipped and found at the next sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from smsrouter.contrib.conversations import sessions
from smsrouter.contrib.conversations.models import Session, SessionStatus

#: Sessions handled per transaction: a backlog is worked through in bounded locks.
BATCH = 200


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """Expire the sessions past `expires_at`, then remind those past `remind_at`; how many
    of each."""
    now = now or timezone.now()
    expired = _each(Session.objects.filter(expires_at__lte=now), sessions.expire, now)
    reminded = _each(Session.objects.filter(remind_at__lte=now), sessions.remind, now)
    return expired, reminded


def _each(due: QuerySet[Session], act: Callable[[Session, datetime], object], now: datetime) -> int:
    done = 0
    while True:
        with transaction.atomic():
            batch = list(due.filter(status=SessionStatus.ACTIVE)
                         .select_for_update(skip_locked=True, of=("self",))
                         .select_related("connection__backend").order_by("pk")[:BATCH])
            for session in batch:
                act(session, now)
        done += len(batch)
        if len(batch) < BATCH:
            return done
