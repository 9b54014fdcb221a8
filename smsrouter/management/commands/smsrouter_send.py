"""`manage.py smsrouter_send`: one text to many numbers, and an honest account of each.

send() returns the stored messages with their status as far as it is known when it
returns: where no server's sender runs in this process (as in this command, in inline
mode) they have been sent, or failed, by then; elsewhere they wait for the sender that
will send them. The summary counts those statuses, never what was merely asked for.
"""

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from smsrouter import conf, dispatch
from smsrouter.api import send
from smsrouter.backends import backends
from smsrouter.exceptions import SmsRouterError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import OPTED_OUT, Status

BATCH = 1000
#: Failed messages shown with their error; the rest are counted.
ERRORS_SHOWN = 3

#: Who sends what this process leaves queued, by processing mode.
SENDERS = {
    dispatch.INLINE: "the server's sender (the ASGI server, `manage.py smsrouter_sender`, "
    "or `smsrouter_connect` for a backend that holds a link)",
    dispatch.CELERY: "the Celery workers",
    dispatch.CHANNELS: "the channel workers (`manage.py runworker smsrouter.outgoing`)",
}


@dataclass
class Tally:
    """What became of each number, from the statuses of the messages send() returned; of
    the failed and the retried only what is shown, as a bulk send may be long."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first ERRORS_SHOWN failures
    scheduled: int = 0
    retrying: int = 0
    first_retry: OutgoingMessage | None = None
    waiting: int = 0  # for a sender in another process
    duplicates: int = 0
    blank_rows: int = 0
    opted_out: int = 0  # stored failed, no gateway called: the number had sent STOP

    def add(self, messages: Sequence[OutgoingMessage]) -> None:
        now = timezone.now()
        for msg in messages:
            if msg.status in (Status.SENT, Status.DELIVERED):
                self.sent += 1
            elif msg.status == Status.FAILED and msg.error == OPTED_OUT:
                self.opted_out += 1
            elif msg.status == Status.FAILED:
                self.failed += 1
                if len(self.errors) < ERRORS_SHOWN:
                    self.errors.append(f"{msg.connection.identity}: {msg.error}")
            elif msg.status == Status.QUEUED and msg.record.attempts:
                self.retrying += 1
                if self.first_retry is None or msg.record.due_at < self.first_retry.record.due_at:
                    self.first_retry = msg
            elif msg.record.due_at and msg.record.due_at > now:
                self.scheduled += 1
            else:  # queued for a worker or a process holding the gateway's link, or in flight
                self.waiting += 1

    @property
    def queued(self) -> int:
        return self.scheduled + self.retrying + self.waiting

    @property
    def skipped(self) -> int:
        return self.duplicates + self.blank_rows + self.opted_out

    def lines(self, when: datetime | None) -> list[str]:
        why = ""
        if self.opted_out:
            why = (" (opted out)" if self.opted_out == self.skipped
                   else f" ({self.opted_out} opted out)")
        lines = [(f"{self.sent} sent, {self.failed} failed, {self.queued} queued for later, "
                  f"{self.skipped} skipped{why}.")]
        if self.failed:
            lines.append("Failed:" if self.failed <= ERRORS_SHOWN else
                         f"Failed, the first {ERRORS_SHOWN} of {self.failed} (the admin lists "
                         "every one with its error):")
            lines += [f"  {error}" for error in self.errors]
        sender = SENDERS[dispatch.mode()]
        if self.scheduled:
            lines.append(f"Scheduled for {when.isoformat() if when else 'later'}: "
                         f"{self.scheduled}, sent then by {sender}.")
        if first := self.first_retry:
            lines.append(f"To be retried by {sender}: {self.retrying}, the first at "
                         f"{first.record.due_at.isoformat(timespec='seconds')} "
                         f"({first.connection.identity}: {first.error}).")
        if self.waiting:
            lines.append(f"Left to {sender}: {self.waiting}.")
        skipped = [f"{count} {what}" for count, what in (
            (self.duplicates, "number(s) given more than once (sent once)"),
            (self.blank_rows, "CSV row(s) without a number"),
            (self.opted_out, "number(s) opted out (stored failed, not sent)")) if count]
        if skipped:
            lines.append(f"Skipped: {', '.join(skipped)}.")
        return lines


class Command(BaseCommand):
    help = (
        "Send one text to many numbers: from arguments, or a CSV file's first column (or its "
        "'phone' column). Stored, then sent in batches; --at schedules them. Prints how many "
        "were sent, failed (the first errors, by number), queued for later (scheduled, to be "
        "retried, or left to a sender in another process) and skipped: a number given more "
        "than once, as the backend writes it, is sent once, a CSV row without a number "
        "is skipped, and so is a number that opted out (its message is stored failed). Exits with status 1 when no message was sent or queued for later."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identities", nargs="*", metavar="NUMBER")
        parser.add_argument("--text", required=True, help="The message.")
        parser.add_argument("--backend", help="Backend name (optional with only one backend).")
        parser.add_argument("--csv", type=Path, metavar="FILE", help="Numbers, one per row.")
        parser.add_argument("--at", metavar="DATETIME",
                            help="Send later, e.g. 2026-12-01T08:00+03:00 (ISO 8601).")

    def handle(self, *args: Any, identities: list[str], text: str, backend: str | None,
               csv: Path | None, at: str | None, **options: Any) -> None:
        given = [number.strip() for number in identities] + (list(_read_csv(csv)) if csv else [])
        if not given:
            raise CommandError("No recipients: give numbers as arguments or --csv FILE.")
        when = _parse_at(at) if at else None
        tally = Tally(blank_rows=given.count(""))
        numbers = _once_each([number for number in given if number], _backend_name(backend))
        tally.duplicates = len(given) - tally.blank_rows - len(numbers)
        done = 0
        for start in range(0, len(numbers), BATCH):
            try:
                messages = send(text, numbers[start:start + BATCH], backend=backend, at=when)
            except (SmsRouterError, ValueError) as exc:
                self.stdout.write("")  # past the progress bar
                self._report(tally, when)
                raise CommandError(f"{exc} ({done} of {len(numbers)} stored before this.)") from exc
            done += len(messages)
            tally.add(messages)
            self.stdout.write(f"\r{_bar(done, len(numbers))}", ending="")
            self.stdout.flush()
        self.stdout.write("")
        self._report(tally, when)
        if not tally.sent and not tally.scheduled and not tally.waiting:
            raise CommandError("No message was sent or queued for later.")

    def _report(self, tally: Tally, when: datetime | None) -> None:
        summary, *details = tally.lines(when)
        style = self.style.WARNING if tally.failed or tally.retrying else self.style.SUCCESS
        self.stdout.write(style(summary))
        for line in details:
            self.stdout.write(line)


def _backend_name(backend: str | None) -> str:
    """The backend the numbers go to: given, or the only one there is."""
    names = list(conf.installed_backends())
    if backend is None and len(names) != 1:
        raise CommandError(f"--backend is needed: INSTALLED_BACKENDS has {len(names)} entries "
                           f"({', '.join(names) or 'none'}).")
    name = backend or names[0]
    try:
        backends[name]
    except SmsRouterError as exc:
        raise CommandError(str(exc)) from exc
    return name


def _once_each(numbers: list[str], backend_name: str) -> list[str]:
    """The numbers in their order, each once as the backend normalizes it (0712... and
    +255712... are one phone where its default_region is TZ)."""
    normalize = backends[backend_name].normalize
    seen: set[str] = set()
    kept = []
    for number in numbers:
        if (identity := normalize(number)) not in seen:
            seen.add(identity)
            kept.append(number)
    return kept


def _read_csv(path: Path) -> Iterator[str]:
    """Each row's number, "" for a row that has cells but no number; empty lines are no rows."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = [row for row in csv.reader(file) if any(cell.strip() for cell in row)]
    except OSError as exc:
        raise CommandError(f"--csv {path}: {exc.strerror}.") from exc
    if not rows:
        return
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("phone") if "phone" in header else 0
    has_header = "phone" in header or not any(ch.isdigit() for ch in rows[0][0])
    for row in rows[1 if has_header else 0:]:
        yield row[column].strip() if len(row) > column else ""


def _parse_at(value: str) -> datetime:
    when = parse_datetime(value)
    if when is None:
        raise CommandError(f"--at {value!r} is not a date and time; write 2026-12-01T08:00+03:00.")
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
