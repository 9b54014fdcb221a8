"""The sweeper: finds what a lost task, a lost channel message or a dead worker left behind.

Inbound messages still "received" or "processing", and outbound ones "queued" (and due)
or "sending", untouched for longer than a given age, are dispatched again. Claims make a
second dispatch harmless, so running it often is safe. A message caught mid-send by a dead
worker is sent again: delivery is at least once.
"""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from smsrouter import dispatch, workers
from smsrouter.models import Direction, Message, Status


def recover(older_than: float) -> dict[str, int]:
    """Re-dispatch stuck messages; how many of each direction."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than)
    inbound = list(Message.objects.filter(
        direction=Direction.IN, status__in=[Status.RECEIVED, Status.PROCESSING],
        updated_at__lt=cutoff).values_list("pk", flat=True))
    interrupted = Message.objects.filter(direction=Direction.OUT, status=Status.SENDING,
                                         updated_at__lt=cutoff)
    resend = list(interrupted.values_list("pk", flat=True))
    interrupted.update(status=Status.QUEUED, updated_at=now)
    outbound = Message.objects.filter(direction=Direction.OUT, status=Status.QUEUED).filter(
        Q(due_at__lte=now) | Q(due_at__isnull=True, updated_at__lt=cutoff) | Q(pk__in=resend))
    by_backend: dict[str, list[int]] = defaultdict(list)
    for pk, backend_name in outbound.values_list("pk", "backend__name"):
        by_backend[backend_name].append(pk)
    if dispatch.mode() == dispatch.INLINE:
        for chunk in dispatch.in_chunks(inbound):
            workers.route_by_ids(chunk)
        for backend_name, ids in by_backend.items():
            workers.send_by_ids(backend_name, ids)
    else:
        dispatch.route_later(*inbound)
        for backend_name, ids in by_backend.items():
            dispatch.send_later(backend_name, ids)
    return {"inbound": len(inbound), "outbound": sum(map(len, by_backend.values()))}
