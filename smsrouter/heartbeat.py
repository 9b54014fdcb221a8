"""Heartbeats: rows that say a process which must run somewhere still runs.

Nothing else tells a web server whether the sender is alive: it may run in another
process or on another host (a Celery worker, `smsrouter_recover --every`). So each host of
that work writes its row, one per name, and /ready/ and /metrics read them from the
database, the same in every process:

* "scheduler": a server's scheduler (or `smsrouter_sender`'s) at its sweep;
* "recover": the sweep of Celery beat's task and of `smsrouter_recover`;
* "smpp:<backend>": an SMPP bind's state, from the process that holds it.

A beat is one UPDATE (an INSERT the first time), at most every SMSROUTER_HEARTBEAT_EVERY
seconds per process and name (`Beats`), never per message.
"""

import os
import socket
import time
from datetime import datetime
from typing import Any

from django.utils import timezone

from smsrouter import conf
from smsrouter.models import Heartbeat

SCHEDULER, RECOVER = "scheduler", "recover"
#: The heartbeat that shows the sender alive, by processing mode.
SENDER = {"inline": SCHEDULER, "celery": RECOVER, "channels": RECOVER}


def holder() -> str:
    """This process, as rows name their writer."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


BIND_PREFIX = "smpp:"


def bind_name(backend_name: str) -> str:
    return f"{BIND_PREFIX}{backend_name}"


def beat(name: str, state: dict[str, Any] | None = None, now: datetime | None = None) -> None:
    """Record that `name` is alive now, in this process (and its state, when given)."""
    values: dict[str, Any] = {"holder": holder(), "beat_at": now or timezone.now()}
    if state is not None:
        values["state"] = state
    if not Heartbeat.objects.filter(name=name).update(**values):
        Heartbeat.objects.update_or_create(name=name, defaults=values)


class Beats:
    """A process's beats under one name, written at most every SMSROUTER_HEARTBEAT_EVERY
    seconds however often `due()` is asked: a sweep every half second costs no more."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._next = 0.0

    def due(self) -> bool:
        """Whether to beat now; True at most once per interval."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + conf.get("SMSROUTER_HEARTBEAT_EVERY")
        return True

    def beat(self) -> None:
        """`heartbeat.beat(name)` if due: for blocking callers."""
        if self.due():
            beat(self.name)
