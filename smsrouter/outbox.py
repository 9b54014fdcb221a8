"""The outbox: the only way out. Every outgoing message (a reply, a `send()`, a scheduled
or a bulk send) is a row, "queued" with its `due_at`, committed before any gateway sees
it; the sender takes it from there (`smsrouter.dispatch` says which sender, and where).

The apps' outgoing phase runs here, on the stored rows and in the same transaction: an
app that cancels a message leaves it "failed" with the app's name, so that a support
person can always tell what happened to it. A message to a number that opted out is
stored "failed" (models.OPTED_OUT) and skips that phase: no gateway ever sees it.

A text is stored, and sent, as every database can hold it (smsrouter.limits): NUL and
lone surrogates become U+FFFD, the exact original kept in the row's `fields`.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import partial

from django.db import DatabaseError, transaction
from django.utils.functional import Promise

from smsrouter import connectionrow, dispatch, keywords, languages, limits, recipients, signals, statements
from smsrouter.backends import backends
from smsrouter.groupcommit import GroupCommit, together_or_alone
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router

#: Messages to store, each group with the router whose apps' outgoing phase it gets.
Batch = tuple[Sequence[OutgoingMessage], Router]


def store(batches: Sequence[Batch], due_at: datetime | None = None) -> list[OutgoingMessage]:
    """Insert the messages ("queued", `due_at`) with one statement, run the outgoing phase,
    and have them handed on once the caller's transaction commits; those still to send."""
    messages = [msg for group, _ in batches for msg in group]
    if not messages:
        return []
    # Claimed as they are born when this caller sends them once committed: durable, and
    # nobody else's to send, before any network call, as the sender's own claim would.
    born = dispatch.caller_sends(due_at)
    records = []
    for msg in messages:
        claimed = born and backends[msg.backend_name].ready()
        # What is stored is what is sent: NUL and lone surrogates become U+FFFD.
        msg.text, fields = limits.outgoing_text(msg.text)
        if isinstance(msg, keywords.Confirmation):  # sent even to an opted-out number
            fields = {**fields, connectionrow.EXEMPT: msg.keyword}
        records.append(Message(
            direction=Direction.OUT, backend_id=msg.connection.backend_id,
            connection=msg.connection, text=msg.text, segments=limits.segments(msg.text),
            fields=fields, status=Status.SENDING if claimed else Status.QUEUED,
            attempts=int(claimed), due_at=due_at,
            in_response_to_id=msg.in_response_to.id if msg.in_response_to else None))
    # A number that opted out, as its row says now in any process, gets its messages
    # stored "failed" by this very INSERT (smsrouter.statements).
    statements.insert(records)
    for msg, row in zip(messages, records, strict=True):
        msg.record, msg.status, msg.error = row, row.status, row.error
    cancelled: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for group, router in batches:
        for msg in group:
            if msg.status != Status.FAILED and (app := router.outgoing(msg)) is not None:
                msg.status = msg.record.status = Status.FAILED
                msg.error = msg.record.error = f"cancelled by {app}.outgoing()"
                msg.record.attempts = 0  # claimed at birth, perhaps, but never tried
                cancelled[msg.error].append(msg)
    for error, group in cancelled.items():
        statements.update([msg.id for msg in group],
                          {"status": Status.FAILED, "error": error, "attempts": 0})
    signals.changed(records)
    ready = [msg for msg in messages if msg.status != Status.FAILED]
    dispatch.queued(ready, due_at)
    return ready


def add(text: languages.Text, to: recipients.Recipients, backend: str | None,
        at: datetime | None) -> list[OutgoingMessage]:
    """`send()`: one message per recipient, stored in one transaction."""
    messages = _messages_for(text, to, backend, at)
    with transaction.atomic():
        store([(messages, Router())], at)
    return messages


#: One asend() call: text, recipients, backend, at.
SendRequest = tuple[languages.Text, recipients.Recipients, str | None, datetime | None]


def add_many(requests: list[SendRequest]) -> list[list[OutgoingMessage] | Exception]:
    """`add()` for concurrent asend() calls, in the caller's transaction: one INSERT per
    `at`, and each call's messages through the outgoing phase with a router of its own.

    A call with a bad recipient gets its ValueError back and stores nothing; a database
    error is raised, for the batch to be tried again call by call.
    """
    made: list[list[OutgoingMessage] | Exception] = []
    for text, to, backend, at in requests:
        try:
            made.append(_messages_for(text, to, backend, at))
        except DatabaseError:
            raise
        except Exception as exc:
            made.append(exc)
    by_due: dict[datetime | None, list[Batch]] = defaultdict(list)
    for (*_, at), messages in zip(requests, made, strict=True):
        if not isinstance(messages, Exception):
            by_due[at].append((messages, Router()))
    for at, batches in by_due.items():
        store(batches, at)
    return made


def _messages_for(text: languages.Text, to: recipients.Recipients, backend: str | None,
                  at: datetime | None) -> list[OutgoingMessage]:
    """recipients.messages_for(), after refusing a text that is neither a string nor a lazy
    text (ValueError) before any recipient's Connection is made; a lazy text rendered in
    each recipient's language."""
    if not isinstance(text, Promise):
        limits.outgoing_text(text)
    messages = recipients.messages_for(text, to, backend, at)
    languages.render_for_recipients(text, messages)
    return messages


def _add_one(request: SendRequest) -> list[OutgoingMessage]:
    return add(*request)


#: Where concurrent asend() calls' messages wait to be stored together.
sends: GroupCommit[SendRequest, list[OutgoingMessage]] = GroupCommit(
    partial(together_or_alone, together=add_many, alone=_add_one, what="sends"))
