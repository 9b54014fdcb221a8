"""RapidSMS 2.2 set up as a deployment would be, to take the load bench/e2e.py puts on smsrouter.

Inbound Kannel requests come to /backend/kannel/ (RapidSMS's KannelBackendView), route
through the echo and ping handlers (the handlers app) and the message log, and each reply
goes out through RapidSMS's KannelBackend to FAKE_KANNEL_URL. The database is SQLite at
RAPIDSMS_DATABASE, with the pragmas smsrouter's demo uses (WAL, synchronous=NORMAL) and
IMMEDIATE transactions, so that two gunicorn workers writing at once wait for each other
instead of failing with "database is locked". Connections persist across requests
(CONN_MAX_AGE), as a sync worker deployment would configure them.
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "rapidsms_project.urls"
WSGI_APPLICATION = "rapidsms_project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rapidsms",
    "rapidsms.backends.kannel",
    "rapidsms.contrib.handlers",
    "rapidsms.contrib.messagelog",
    "rapidsms.contrib.echo",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["RAPIDSMS_DATABASE"],
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}

INSTALLED_BACKENDS = {
    "kannel": {
        "ENGINE": "rapidsms.backends.kannel.KannelBackend",
        "sendsms_url": os.environ["FAKE_KANNEL_URL"],
        "charset": "UTF-8",
    },
}
RAPIDSMS_HANDLERS = [
    "rapidsms.contrib.echo.handlers.echo.EchoHandler",
    "rapidsms.contrib.echo.handlers.ping.PingHandler",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
