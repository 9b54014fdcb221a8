"""The router's side of conversations: one App, listed first in SMSROUTER_APPS.

Its handle() gives a message from a number with an active session to that session, and
starts a conversation on its trigger keyword; everything else goes on to the next apps.
Listed first, it sees answers before any keyword handler could take them for commands;
the global keywords (STOP, HELP) run before every app, so they still work mid-session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smsrouter.contrib.conversations import sessions, timers
from smsrouter.router import App, periodic

if TYPE_CHECKING:
    from smsrouter.messages import IncomingMessage

#: How often reminders and expiry are looked for (seconds).
SWEEP_EVERY = 60


class ConversationsApp(App):
    """Routes answers to their sessions; sends reminders and expires sessions on time."""

    def handle(self, msg: IncomingMessage) -> bool:
        return sessions.take(msg)

    @periodic(every=SWEEP_EVERY)
    def sweep(self) -> None:
        timers.sweep()
