"""What a message does to a session (starts it, answers it), and what time does
(reminds, expires), each on the row locked by smsrouter.contrib.conversations.state."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from smsrouter import languages
from smsrouter.api import send
from smsrouter.contrib.conversations import signals, state
from smsrouter.contrib.conversations.definition import (
    Conversation,
    Step,
    listed,
    render,
)
from smsrouter.contrib.conversations.models import Answer, Session, SessionStatus

if TYPE_CHECKING:
    from smsrouter.messages import IncomingMessage
    from smsrouter.models import Connection

logger = logging.getLogger(__name__)


def take(msg: IncomingMessage) -> bool:
    """Route `msg` to its sender's session, or start the conversation it triggers;
    whether it was taken.

    The common message (no session, no trigger) costs no query and no transaction: its
    INSERT read whether its number is in a session (`state.may_have_active()`). Otherwise the work runs in a transaction (a savepoint in the caller's,
    if any) on the locked session row.
    """
    conversations = listed()
    if not conversations:
        return False
    if not state.may_have_active(msg) and _triggered(conversations, msg.text) is None:
        return False
    with transaction.atomic():
        session = state.active(msg.connection)
        if session is None:
            if (triggered := _triggered(conversations, msg.text)) is None:
                return False  # it ended in between (expired, cancelled)
            try:
                with transaction.atomic():
                    session = triggered.open(msg.connection, timezone.now())
            except IntegrityError:
                # A second quick message of the same number started one meanwhile.
                session = state.active(msg.connection)
                if session is None:
                    raise
            else:
                msg.respond(render(triggered.first_step().question, {}))
                return True
        conversation = conversations.get(session.conversation)
        if conversation is None or not conversation.has_step(session.step):
            logger.warning("session %s: %r has no step %r in SMSROUTER_CONVERSATIONS any more; "
                           "cancelled", session.pk, session.conversation, session.step)
            state.close(session, SessionStatus.CANCELLED, timezone.now())
            return False
        answer(conversation, session, msg)
        return True


def _triggered(conversations: dict[str, type[Conversation]], text: str) -> type[Conversation] | None:
    return next((c for c in conversations.values() if c.triggered_by(text)), None)


def answer(conversation: type[Conversation], session: Session, msg: IncomingMessage) -> None:
    """Take `msg` as the answer to the session's step: store it and ask the next question,
    finish, or say what was wrong (and give up after the step's retries)."""
    now = timezone.now()
    step = conversation.step(session.step)
    conversation.touch(session, now)
    try:
        value = step.clean(msg.text)
    except ValueError:
        session.retries += 1
        if session.retries > conversation.retries_allowed(step):
            state.close(session, SessionStatus.CANCELLED, now)
            _respond(msg, render(conversation.gave_up, session.answers))
        else:
            session.save()
            msg.respond(step.error_text(session.answers))
        return
    session.answers[step.name] = value
    Answer.objects.create(session=session, step=step.name, text=msg.text, value=value, created_at=now)
    following = conversation.next_step(step, session.answers)
    if following is None:
        state.close(session, SessionStatus.DONE, now)
        _respond(msg, conversation().finished(session, msg))
        signals.conversation_finished.send(sender=conversation, session=session, message=msg)
        return
    session.step, session.retries = following.name, 0
    session.save()
    msg.respond(_question(following, session))


def _question(step: Step, session: Session) -> str:
    return render(step.question, session.answers)


def _respond(msg: IncomingMessage, text: str) -> None:
    if text:
        msg.respond(text)


def remind(session: Session, now: datetime) -> None:
    """Ask the session's question again, or say its conversation's `reminder`."""
    conversation = listed().get(session.conversation)
    session.remind_at = None
    session.save(update_fields=["remind_at"])
    if conversation is None or not conversation.has_step(session.step):
        return  # its next message cancels it (take())
    with translation.override(languages.language_for(session.connection)):
        question = _question(conversation.step(session.step), session)
        if conversation.reminder is None:
            text = question
        else:
            text = render(conversation.reminder, {**session.answers, "question": question})
        send(text, session.connection)


def expire(session: Session, now: datetime) -> None:
    state.close(session, SessionStatus.EXPIRED, now)
    sender = listed().get(session.conversation, Conversation)
    signals.conversation_expired.send(sender=sender, session=session)


def cancel_for(connection: Connection) -> None:
    """The number opted out (STOP): its session, if any, ends "cancelled"."""
    with transaction.atomic():
        if (session := state.active(connection)) is not None:
            state.close(session, SessionStatus.CANCELLED, timezone.now())


def connect_opt_out() -> None:
    """Cancel the session of a number that sends STOP (smsrouter.signals.opted_out)."""
    from smsrouter.signals import opted_out

    opted_out.connect(_opted_out, dispatch_uid="smsrouter-conversations-opted-out")


def _opted_out(sender: Any, connection: Connection, **kwargs: Any) -> None:
    cancel_for(connection)
