"""The demo project that `make run` serves: SQLite, inline processing, two httptester phones.

Environment overrides: DATABASE_URL (default: SQLite in this folder), SMSROUTER_PROCESSING,
DJANGO_DEBUG, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS. To add backends in your own
settings module: `from demo.settings import *`, then `INSTALLED_BACKENDS["kannel-mtn"] = {...}`.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "smsrouter",
    "smsrouter.contrib.httptester",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"
WSGI_APPLICATION = "demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=600
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page read while a message is written; IMMEDIATE avoids "database is
    # locked" when two requests upgrade a read to a write at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"smsrouter": {"handlers": ["console"], "level": "INFO"}},
}

INSTALLED_BACKENDS = {
    "httptester-public": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
    "httptester-private": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
}
SMSROUTER_APPS = [
    "smsrouter.contrib.echo.EchoApp",
    "demo.sms.JoinHandler",
    "demo.sms.AddHandler",
]
SMSROUTER_PROCESSING = os.environ.get("SMSROUTER_PROCESSING", "inline")
SMSROUTER_DEFAULT_RESPONSE = (
    "Sorry, I didn't understand. Try: ECHO <text>, PING, JOIN <name> or ADD 2 3."
)
