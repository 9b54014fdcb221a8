"""The sweep: finds what a crash, a lost task or a lost channel message left behind.

Inbound messages still "received" and sends still "sending", untouched for longer than
SMSROUTER_RECOVER_AFTER, are taken up again: the inbound ones routed (their claim makes a
second routing impossible), the sends queued again with their attempts kept, since the
attempt was made. So a send caught mid-flight by a crash goes out again: delivery is at
least once, and the duplicates are at most the sends in flight at the crash.

The server's scheduler sweeps its own way (`smsrouter.scheduler`); `recover()` is the
sweep for the other hosts: `manage.py smsrouter_recover` and Celery beat.
"""

from collections import defaultdict
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db.models import Q
from django.utils import timezone

from smsrouter import dispatch, inbound, parts, sender
from smsrouter.models import Direction, Message, Status


def requeue_interrupted(older_than: float) -> int:
    """Queue again the sends left "sending" longer than `older_than` seconds; how many."""
    now = timezone.now()
    return Message.objects.filter(
        direction=Direction.OUT, status=Status.SENDING,
        updated_at__lt=now - timedelta(seconds=older_than),
    ).update(status=Status.QUEUED, due_at=now, updated_at=now)  # due: sent by this sweep


def stuck_inbound(older_than: float) -> list[int]:
    """Inbound messages still waiting to be routed after `older_than` seconds."""
    return list(Message.objects.filter(
        direction=Direction.IN, status=Status.RECEIVED,
        updated_at__lt=timezone.now() - timedelta(seconds=older_than),
    ).order_by("pk").values_list("pk", flat=True))


def recover(older_than: float) -> dict[str, int]:
    """Sweep once: store the long SMS whose parts stopped coming (smsrouter.parts), route
    or hand on stuck inbound messages, queue interrupted sends again, and send (or hand
    on) every queued message that is due. How many of each direction."""
    parts.expire()
    stuck = stuck_inbound(older_than)
    requeue_interrupted(older_than)
    now = timezone.now()
    due: dict[str, list[int]] = defaultdict(list)
    # Scheduled sends and retries once due; others (handed on when stored) once left.
    for pk, backend_name in Message.objects.filter(
        Q(due_at__lte=now) | Q(due_at__isnull=True, updated_at__lt=now - timedelta(seconds=older_than)),
        direction=Direction.OUT, status=Status.QUEUED,
    ).order_by("pk").values_list("pk", "backend__name"):
        due[backend_name].append(pk)
    if dispatch.routes_here():
        for chunk in dispatch.in_chunks(stuck):
            inbound.route_ids(chunk)
        for backend_name, ids in due.items():
            for chunk in dispatch.in_chunks(ids):
                async_to_sync(sender.send_due)(ids=chunk, backend_names=[backend_name])
    else:
        dispatch.route_later(*stuck)
        for backend_name, ids in due.items():
            dispatch.send_later(backend_name, ids)
    return {"inbound": len(stuck), "outbound": sum(map(len, due.values()))}
