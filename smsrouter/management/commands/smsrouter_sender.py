"""`manage.py smsrouter_sender`: the server's scheduler, where no ASGI server runs one.

A WSGI deployment (or an ASGI server without lifespan) routes in its requests and sends
in them once committed, but nothing there retries, sends what is scheduled, sweeps what a
crash left or runs periodic jobs: this command does, with the very scheduler the ASGI
lifespan starts (`smsrouter.scheduler`). `--once` sweeps and sends what is due, runs the
periodic jobs whose turn it is, and exits: for cron.
"""

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from smsrouter import conf, dispatch, heartbeat, inbound, periodic, recovery, sender
from smsrouter.scheduler import Scheduler

T = TypeVar("T")


class Command(BaseCommand):
    help = ("Send queued messages, retry and sweep, and run periodic jobs, until SIGTERM or "
            "SIGINT: what the ASGI server's lifespan does, for deployments without one.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true",
                            help="Do what is due now, then exit (for cron).")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        duties = dispatch.server_duties()
        if once:
            self.stdout.write(asyncio.run(_closing(_once(duties))))
            return
        asyncio.run(_closing(self._serve(duties)))

    async def _serve(self, duties: dispatch.Duties) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        scheduler = Scheduler(duties)
        await scheduler.start()
        self.stdout.write(f"Sending for {', '.join(duties.backends) or 'no backend'}; "
                          "stop with Ctrl-C.")
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            await scheduler.stop()


async def _closing(work: Coroutine[Any, Any, T]) -> T:
    """`work`, then the database connections of the thread that did its database work
    (asgiref's shared one, which outlives this command's event loop) closed."""
    try:
        return await work
    finally:
        await sync_to_async(connections.close_all)()


async def _once(duties: dispatch.Duties) -> str:
    routed = requeued = 0
    if duties.sweeps:
        after = conf.get("SMSROUTER_RECOVER_AFTER")
        requeued = await sync_to_async(recovery.requeue_interrupted)(after)
        stuck = await sync_to_async(recovery.stuck_inbound)(after)
        routed = await sync_to_async(inbound.route_ids)(stuck) if stuck else 0
    sent = failed = retried = 0
    while duties.backends:
        done = await sender.send_due(backend_names=duties.backends)
        sent, failed = sent + done.sent, failed + done.failed
        retried += sum(map(len, done.retries.values()))
        if done.claimed < sender.BATCH:
            break
    await sync_to_async(heartbeat.beat)(heartbeat.SCHEDULER)  # as the scheduler's sweep does
    jobs = 0
    if duties.periodic:
        for job in periodic.jobs():
            jobs += await sync_to_async(periodic.run_if_due)(job.app_path, job.method, job.every)
    return (f"Routed {routed} stuck message(s), re-queued {requeued} interrupted send(s); "
            f"sent {sent}, failed {failed}, queued {retried} for a retry; ran {jobs} periodic job(s).")
