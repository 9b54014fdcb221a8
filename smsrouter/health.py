"""/health/ and /ready/ for load balancers and orchestrators: unauthenticated, JSON.

/health/ says the process answers, and touches nothing else, so that a slow database
never gets a live server restarted. /ready/ says it can do its job: the database
answers, the sender's heartbeat (in this processing mode) is recent, and the oldest due
outgoing message has waited less than SMSROUTER_READY_MAX_LAG. Each check is one small
indexed query. Neither reveals more than check names, booleans and ages in seconds.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError, InterfaceError, connection
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from smsrouter import conf, dispatch, heartbeat
from smsrouter.models import Heartbeat, Message, Status

logger = logging.getLogger(__name__)


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"alive": True})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    failing = [name for name, check in checks.items() if not check["ok"]]
    body: dict[str, Any] = {"ready": not failing, "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def readiness(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each check's outcome: "database", then (if it answers) "sender" and "outbox_lag"."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, InterfaceError):  # down, or a connection that was closed
        logger.exception("/ready/: the database does not answer")
        return {"database": {"ok": False}}
    now = now or timezone.now()
    return {"database": {"ok": True}, "sender": _sender(now), "outbox_lag": _lag(now)}


def _sender(now: datetime) -> dict[str, Any]:
    name = heartbeat.SENDER[dispatch.mode()]
    beat_at = Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()
    if beat_at is None:
        return {"ok": False, "heartbeat": name, "age": None}
    age = max(0.0, (now - beat_at).total_seconds())
    return {"ok": age <= conf.get("SMSROUTER_HEARTBEAT_MAX_AGE"), "heartbeat": name,
            "age": round(age, 3)}


def _lag(now: datetime) -> dict[str, Any]:
    lag = outbox_lag(now)
    return {"ok": lag <= conf.get("SMSROUTER_READY_MAX_LAG"), "seconds": round(lag, 3)}


def outbox_lag(now: datetime) -> float:
    """How long the oldest queued message that is due has waited: since its due_at, or
    since it was stored when it has none. Read through the (status, due_at) index; as
    MIN(created_at), PostgreSQL would walk created_at's index from the oldest row instead."""
    since = (Message.objects.filter(status=Status.QUEUED).exclude(due_at__gt=now)
             .aggregate(first=Min(Coalesce("due_at", "created_at")))["first"])
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())
