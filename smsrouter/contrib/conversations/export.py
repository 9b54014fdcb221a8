"""The answers as CSV: one row per session, one column per step, for a spreadsheet.

The columns of a conversation still listed are its steps in order; steps only found in
the stored answers (a conversation changed or removed since) follow in the order met.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

from smsrouter.contrib.conversations.definition import listed
from smsrouter.contrib.conversations.models import Session

FIXED = ["session", "conversation", "identity", "backend", "status", "closed_at_step",
         "started_at", "updated_at"]


def step_columns(sessions: Iterable[Session]) -> list[str]:
    columns: dict[str, None] = {}
    conversations = listed()
    for name in dict.fromkeys(session.conversation for session in sessions):
        if (conversation := conversations.get(name)) is not None:
            columns.update(dict.fromkeys(step.name for step in conversation.steps))
    for session in sessions:
        columns.update(dict.fromkeys(session.answers))
    return list(columns)


def write_csv(sessions: Iterable[Session], out: IO[str]) -> int:
    """Write the sessions' answers to `out`; how many rows."""
    rows = list(sessions)
    steps = step_columns(rows)
    writer = csv.writer(out)
    writer.writerow(FIXED + steps)
    for session in rows:
        writer.writerow([
            session.pk, session.conversation, session.connection.identity,
            session.connection.backend.name, session.status, session.closed_at_step,
            session.started_at.isoformat(), session.updated_at.isoformat(),
            *(_cell(session.answers.get(step)) for step in steps),
        ])
    return len(rows)


#: What a spreadsheet would take for the start of a formula, in a text someone sent us.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """The answer as a cell: a text that a spreadsheet would run as a formula is quoted
    (answers are whatever people sent; identities are checked on the way in)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
