"""System checks of the conversations app.

E001 SMSROUTER_CONVERSATIONS cannot be loaded (import, type, no steps); E002 two
conversations share a trigger word; W001 ConversationsApp is missing from SMSROUTER_APPS
or not first in it, so a keyword handler could take an answer for a command.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.checks import CheckMessage, Error, Warning

from smsrouter import conf
from smsrouter.contrib.conversations import definition
from smsrouter.exceptions import ConfigurationError

APP_PATHS = ("smsrouter.contrib.conversations.ConversationsApp",
             "smsrouter.contrib.conversations.app.ConversationsApp")


def check_conversations(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conversations = definition.listed()
    except ConfigurationError as exc:
        return [Error(str(exc), hint="List Conversation subclasses by dotted path.",
                      id="smsrouter.conversations.E001")]
    errors: list[CheckMessage] = []
    seen: dict[str, str] = {}
    for name, conversation in conversations.items():
        if not conversation.steps:
            errors.append(Error(f"Conversation {name!r} has no steps.", hint="Set `steps = [Step(...), ...]`.",
                                id="smsrouter.conversations.E001"))
        for word in (conversation.trigger or "").lower().split("|"):
            if word and word in seen:
                errors.append(Error(f"Conversations {seen[word]!r} and {name!r} share the trigger {word!r}.",
                                    hint="Give each conversation its own trigger words.",
                                    id="smsrouter.conversations.E002"))
            seen.setdefault(word, name)
    apps = list(conf.get("SMSROUTER_APPS"))
    if conversations and (not apps or apps[0] not in APP_PATHS):
        errors.append(Warning(
            "SMSROUTER_CONVERSATIONS is set, but ConversationsApp is not first in SMSROUTER_APPS.",
            hint=f"SMSROUTER_APPS = [{APP_PATHS[0]!r}, ...]: answers must reach their session "
                 "before any keyword handler.", id="smsrouter.conversations.W001"))
    return errors


def register() -> None:
    checks.register(check_conversations, "smsrouter")
