"""Celery tasks: thin, and taking ids. The row, not the task, is the record.

`acks_late` with `reject_on_worker_lost` gives a task back to the broker when its worker
dies, and the row's claim makes the second run harmless. Your project loads its Celery app
in its package's `__init__` (as `demo/__init__.py` does), so that dispatch's tasks, sent
by name, reach its workers.
"""

from typing import Any

from asgiref.sync import async_to_sync
from celery import Celery, shared_task

from smsrouter import conf, dispatch, heartbeat, inbound, periodic, recovery, sender
from smsrouter.dbhealth import drop_broken_connections

TASK_OPTIONS: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name=dispatch.ROUTE_TASK, **TASK_OPTIONS)
def route_messages(message_ids: list[int]) -> int:
    """Route the stored inbound messages among these ids that were not routed already."""
    return inbound.route_ids(message_ids)


@shared_task(name=dispatch.SEND_TASK, **TASK_OPTIONS)
def send_messages(backend_name: str, message_ids: list[int]) -> int:
    """Send the queued, due messages among these ids through one backend; the retries go
    back to the broker together, due when the last of them is (a task run earlier would
    skip those not yet due)."""
    drop_broken_connections()
    done = async_to_sync(sender.send_due)(ids=message_ids, backend_names=[backend_name])
    for name, ids in done.retries.items():
        dispatch.send_later(name, ids, done.all_due_at)
    return done.sent


@shared_task(name="smsrouter.recover")
def recover() -> dict[str, int]:
    """Re-dispatch what a lost task or a dead worker left behind (beat runs it each minute),
    then beat "recover": that beat scheduled it and a worker ran it, /ready/'s sender."""
    counts = recovery.recover(conf.get("SMSROUTER_RECOVER_AFTER"))
    heartbeat.beat(heartbeat.RECOVER)
    return counts


@shared_task(name="smsrouter.run_periodic")
def run_periodic(app_path: str, method: str, every: float) -> bool:
    """Run one app's periodic job, unless another process has this period (its lease)."""
    return periodic.run_if_due(app_path, method, every)


def install_beat(app: Celery) -> None:
    """Add smsrouter's schedule to a Celery app: the sweeper, and every app's periodic jobs.

    Call it from your project's celery.py, in an `on_after_finalize` handler.
    """
    app.add_periodic_task(60.0, recover.s(), name="smsrouter.recover")
    for job in periodic.jobs():
        app.add_periodic_task(job.every, run_periodic.s(job.app_path, job.method, job.every),
                              name=job.name)
