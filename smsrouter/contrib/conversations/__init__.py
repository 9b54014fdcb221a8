"""Conversations: multi-step dialogues by SMS (registration, surveys), kept in the database.

Install it as a Django app ("smsrouter.contrib.conversations"), list
`smsrouter.contrib.conversations.ConversationsApp` FIRST in SMSROUTER_APPS, and name your
conversation classes in SMSROUTER_CONVERSATIONS.

The public names load lazily (PEP 562): Django imports this package before the app
registry is ready, and the names need the models.
"""

from typing import TYPE_CHECKING

from smsrouter import lazynames

__all__ = ["Conversation", "ConversationsApp", "Registration", "Step", "register"]
_HOMES = {
    "Conversation": "smsrouter.contrib.conversations.definition",
    "Step": "smsrouter.contrib.conversations.definition",
    "ConversationsApp": "smsrouter.contrib.conversations.app",
    "Registration": "smsrouter.contrib.conversations.registration",
    "register": "smsrouter.contrib.conversations.registration",
}

if TYPE_CHECKING:
    from smsrouter.contrib.conversations.app import ConversationsApp
    from smsrouter.contrib.conversations.definition import Conversation, Step
    from smsrouter.contrib.conversations.registration import Registration, register


__getattr__, __dir__ = lazynames.exports(__name__, _HOMES, __all__, globals())
