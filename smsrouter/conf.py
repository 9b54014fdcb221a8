"""smsrouter's settings, with their defaults in one place.

Read through these functions rather than `settings.X` so that `override_settings` and
pytest-django's `settings` fixture take effect at once and a missing setting has a default.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "SMSROUTER_APPS": [],
    "SMSROUTER_PROCESSING": "inline",
    "SMSROUTER_DEFAULT_RESPONSE": None,
    # Global keywords (smsrouter.keywords), answered before any app: each meaning's words,
    # matched on a message's first word whatever its case.
    "SMSROUTER_KEYWORDS": {
        "stop": ["STOP", "STOPALL", "UNSUBSCRIBE", "ARRET", "ARRÊT", "ACHA"],
        "start": ["START", "UNSTOP", "SUBSCRIBE", "DEMARRER", "DÉMARRER", "ANZA"],
        "help": ["HELP", "AIDE", "MSAADA"],
        "lang": ["LANG", "LANGUE", "LUGHA"],
    },
    # The answer to HELP; None for smsrouter's own, which names STOP, START and HELP.
    "SMSROUTER_HELP": None,
    # smsrouter.contrib.conversations: the Conversation classes it runs (dotted paths);
    # how long a session waits for an answer, when it reminds (None: never), and how many
    # invalid answers a step takes before it gives up. Each class may set its own.
    "SMSROUTER_CONVERSATIONS": [],
    "SMSROUTER_CONVERSATION_EXPIRE_AFTER": timedelta(days=3),
    "SMSROUTER_CONVERSATION_REMIND_AFTER": timedelta(days=1),
    "SMSROUTER_CONVERSATION_MAX_RETRIES": 3,
    # Serve /backend/<name>/ webhooks ahead of Django's middleware (smsrouter.webhooks).
    "SMSROUTER_WEBHOOK_FAST_PATH": True,
    # Sends that fail for a reason a retry may fix: how often and how soon.
    "SMSROUTER_SEND_MAX_ATTEMPTS": 8,
    "SMSROUTER_SEND_BACKOFF": 5.0,
    "SMSROUTER_SEND_BACKOFF_MAX": 600.0,
    # Messages left "received" or "sending" this long (seconds) were left by a crash or a
    # lost task: the sweep takes them up again.
    "SMSROUTER_RECOVER_AFTER": 300,
    # How often a server's scheduler sweeps (seconds): due rows other processes made,
    # and what a crash left behind.
    "SMSROUTER_SWEEP_EVERY": 2.0,
    # The httptester (page, posts, conversation JSON, WebSocket): None follows DEBUG,
    # True serves it with DEBUG off too (to staff only), False never.
    "SMSROUTER_HTTPTESTER": None,
    # /metrics: a Bearer token (or ?token=) that may read it besides staff users; None: staff only.
    "SMSROUTER_METRICS_TOKEN": None,
    # /metrics counts messages by status among those created this many seconds ago or
    # since: a scrape reads that window through the created_at index, never the table.
    "SMSROUTER_METRICS_WINDOW": 3600,
    # /ready/ fails when the oldest due outgoing message has waited longer (seconds),
    # or when the sender's heartbeat is older; heartbeats are written this often at most.
    "SMSROUTER_READY_MAX_LAG": 300,
    "SMSROUTER_HEARTBEAT_MAX_AGE": 180,
    "SMSROUTER_HEARTBEAT_EVERY": 5.0,
    # A long SMS whose parts have not all come this long (seconds) after its first is
    # stored with what arrived (smsrouter.parts); used parts are kept as long, to know a
    # gateway's retry of one.
    "SMSROUTER_PARTS_TIMEOUT": 600,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def httptester_enabled() -> bool:
    """Whether the httptester is served at all; who may use it is the tester's own rule.

    Only True itself turns it on with DEBUG off: a value such as "False" keeps it off
    (and fails `manage.py check`, smsrouter.E090).
    """
    configured = get("SMSROUTER_HTTPTESTER")
    return bool(settings.DEBUG) if configured is None else configured is True


def installed_backends() -> dict[str, dict[str, Any]]:
    return getattr(settings, "INSTALLED_BACKENDS", {})
