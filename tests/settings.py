"""Settings for smsrouter's own tests: the demo's, on an in-memory SQLite database, or on
the database SMSROUTER_TEST_DATABASE_URL names (`make test` runs the suite on both)."""

import os

import dj_database_url

from demo.settings import *  # noqa: F403

if url := os.environ.get("SMSROUTER_TEST_DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(url)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMSROUTER_PROCESSING = "inline"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# A gateway without auth for the tests of the webhook machinery: the httptester backends
# take posts only from this machine with DEBUG on.
INSTALLED_BACKENDS = {**INSTALLED_BACKENDS, "form": {"ENGINE": "tests.backends.FormBackend"}}  # noqa: F405
