"""Celery tasks: thin, and taking ids. The row, not the task, is the record.

`acks_late` with `reject_on_worker_lost` gives a task back to the broker when its worker
dies, and the row's claim makes the second run harmless. Your project loads its Celery app
in its package's `__init__` (as `demo/__init__.py` does), so that `delay()` uses it.
"""

from typing import Any

from celery import Celery, shared_task

from smsrouter import conf, recovery, workers
from smsrouter.router import loaded_apps, periodic_jobs

TASK_OPTIONS: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="smsrouter.route_messages", **TASK_OPTIONS)
def route_messages(message_ids: list[int]) -> int:
    """Route the stored inbound messages among these ids that were not routed already."""
    return workers.route_by_ids(message_ids)


@shared_task(name="smsrouter.send_messages", **TASK_OPTIONS)
def send_messages(backend_name: str, message_ids: list[int]) -> int:
    """Send the queued messages among these ids through one backend."""
    return workers.send_by_ids(backend_name, message_ids)


@shared_task(name="smsrouter.recover")
def recover() -> dict[str, int]:
    """Re-dispatch what a lost task or a dead worker left behind (beat runs it each minute)."""
    return recovery.recover(conf.get("SMSROUTER_RECOVER_AFTER"))


@shared_task(name="smsrouter.run_periodic")
def run_periodic(app_path: str, method: str) -> None:
    """Run one app's periodic job (see `smsrouter.periodic`)."""
    workers.run_periodic(app_path, method)


def install_beat(app: Celery) -> None:
    """Add smsrouter's schedule to a Celery app: the sweeper, and every app's periodic jobs.

    Call it from your project's celery.py, in an `on_after_configure` handler.
    """
    app.add_periodic_task(60.0, recover.s(), name="smsrouter.recover")
    for bound in loaded_apps():
        for method, every in periodic_jobs(bound.app_class):
            path = f"{bound.app_class.__module__}.{bound.app_class.__qualname__}"
            app.add_periodic_task(every, run_periodic.s(path, method), name=f"{path}.{method}")
