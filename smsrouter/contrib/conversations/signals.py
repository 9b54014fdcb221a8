"""Signals of the conversations app.

Both are sent inside the transaction that closed the session, with `sender` the
Conversation class and `session` the Session row (its `answers` complete); a receiver
that reaches outside the database should wait for `transaction.on_commit`.
"""

from django.dispatch import Signal

#: The last step was answered; also sent with `message`, the IncomingMessage that did it.
conversation_finished = Signal()

#: No answer came before `expires_at`; the session is now "expired".
conversation_expired = Signal()
