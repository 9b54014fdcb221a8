import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from smsrouter.api import send
from smsrouter.exceptions import SmsRouterError

BATCH = 1000


class Command(BaseCommand):
    help = ("Send one text to many numbers: from arguments, or a CSV file's first column "
            "(or its 'phone' column). Stored, then sent in batches; `--at` schedules them.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identities", nargs="*", metavar="NUMBER")
        parser.add_argument("--text", required=True, help="The message.")
        parser.add_argument("--backend", help="Backend name (optional with only one backend).")
        parser.add_argument("--csv", type=Path, metavar="FILE", help="Numbers, one per row.")
        parser.add_argument("--at", metavar="DATETIME",
                            help="Send later, e.g. 2026-12-01T08:00+03:00 (ISO 8601).")

    def handle(self, *args: Any, identities: list[str], text: str, backend: str | None,
               csv: Path | None, at: str | None, **options: Any) -> None:
        numbers = list(identities) + (list(_read_csv(csv)) if csv else [])
        if not numbers:
            raise CommandError("No recipients: give numbers as arguments or --csv FILE.")
        when = _parse_at(at) if at else None
        done = 0
        for start in range(0, len(numbers), BATCH):
            try:
                sent = send(text, numbers[start:start + BATCH], backend=backend, at=when)
            except (SmsRouterError, ValueError) as exc:
                raise CommandError(f"{exc} ({done} of {len(numbers)} stored before this.)") from exc
            done += len(sent)
            self.stdout.write(f"\r{_bar(done, len(numbers))}", ending="")
            self.stdout.flush()
        self.stdout.write("")
        verb = f"scheduled for {when.isoformat()}" if when else "queued"
        self.stdout.write(self.style.SUCCESS(f"{done} message(s) {verb}."))


def _read_csv(path: Path) -> Iterator[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except OSError as exc:
        raise CommandError(f"--csv {path}: {exc.strerror}.") from exc
    if not rows:
        return
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("phone") if "phone" in header else 0
    has_header = "phone" in header or not any(ch.isdigit() for ch in rows[0][0])
    for row in rows[1 if has_header else 0:]:
        if len(row) > column and row[column].strip():
            yield row[column].strip()


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
