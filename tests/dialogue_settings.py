"""The scale-out processes' settings (tests.scale_settings: a local gateway named "gw"),
with the demo's own apps, conversations and default reply: the demo's dialogue as real
web and Celery worker processes run it."""

from demo import settings as demo
from tests.scale_settings import *  # noqa: F403

SMSROUTER_APPS = demo.SMSROUTER_APPS
SMSROUTER_CONVERSATIONS = demo.SMSROUTER_CONVERSATIONS
SMSROUTER_DEFAULT_RESPONSE = demo.SMSROUTER_DEFAULT_RESPONSE
