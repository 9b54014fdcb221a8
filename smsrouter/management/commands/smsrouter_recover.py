import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smsrouter import conf, heartbeat, recovery


class Command(BaseCommand):
    help = ("Re-dispatch messages left 'received', 'queued' or 'sending' by a lost task or a "
            "dead worker, and send scheduled messages that are due. Safe to run often.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, metavar="SECONDS",
                            default=conf.get("SMSROUTER_RECOVER_AFTER"),
                            help="Only messages untouched this long (default: "
                            "SMSROUTER_RECOVER_AFTER, 300).")
        parser.add_argument("--every", type=float, metavar="SECONDS",
                            help="Keep running, sweeping this often (for channels mode or "
                            "inline scheduled sends, where no Celery beat runs).")

    def handle(self, *args: Any, older_than: float, every: float | None, **options: Any) -> None:
        if older_than < 1:
            raise CommandError(f"--older-than {older_than:g} would race messages still being "
                               "routed; use a few seconds or more (default 300).")
        beats = heartbeat.Beats(heartbeat.RECOVER)  # /ready/'s sender in channels mode
        while True:
            counts = recovery.recover(older_than)
            beats.beat()
            self.stdout.write(self.style.SUCCESS(
                f"Re-dispatched {counts['inbound']} inbound and {counts['outbound']} outbound "
                "message(s)."))
            if not every:
                return
            time.sleep(every)
