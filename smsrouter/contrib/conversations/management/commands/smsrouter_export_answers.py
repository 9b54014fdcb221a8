from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smsrouter.contrib.conversations.export import write_csv
from smsrouter.contrib.conversations.models import Session, SessionStatus


class Command(BaseCommand):
    help = "Write conversation answers as CSV: one row per session, one column per step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("conversation", nargs="?",
                            help="Only this conversation (its dotted path, as sessions store it).")
        parser.add_argument("--status", choices=SessionStatus.values, help="Only sessions in this status.")
        parser.add_argument("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")

    def handle(self, *args: Any, conversation: str | None, status: str | None, output: str | None,
               **options: Any) -> None:
        sessions = Session.objects.select_related("connection__backend").order_by("pk")
        if conversation:
            sessions = sessions.filter(conversation=conversation)
            if not sessions.exists():
                known = sorted(set(Session.objects.values_list("conversation", flat=True)))
                raise CommandError(f"No sessions of {conversation!r}. Conversations with sessions: "
                                   f"{', '.join(known) or 'none'}.")
        if status:
            sessions = sessions.filter(status=status)
        if output:
            with open(output, "w", newline="", encoding="utf-8") as out:
                count = write_csv(sessions, out)
            self.stderr.write(f"Wrote {count} session(s) to {output}.")
        else:
            write_csv(sessions, self.stdout)
