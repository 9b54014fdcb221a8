"""Settings for smsrouter's own tests: the demo's, on an in-memory SQLite database."""

from demo.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMSROUTER_PROCESSING = "inline"
