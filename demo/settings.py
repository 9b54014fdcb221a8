"""The demo project that `make run` serves: SQLite, inline processing, two httptester phones.

Environment overrides: DATABASE_URL (default: SQLite in this folder), SMSROUTER_PROCESSING
("inline", "celery" or "channels"), CELERY_BROKER_URL (Redis or RabbitMQ), REDIS_URL or
CHANNEL_LAYER_URL (channel layer and shared cache; default: in-process), DJANGO_DEBUG,
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS. To add backends in your own
settings module: `from demo.settings import *`, then `INSTALLED_BACKENDS["kannel-mtn"] = {...}`.
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

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
    "channels",
    "smsrouter",
    "smsrouter.contrib.httptester",
    "smsrouter.contrib.conversations",
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

# Under ASGI each request's blocking code runs in a thread of its own, so persistent
# connections would pile up, one per thread: PostgreSQL gets a pool instead. SQLite's are
# kept (a connection there is an open file): closing the last one after every webhook
# batch checkpoints the WAL, and requests wait behind that. At a fixed 700 msg/s on
# uvicorn x1 it made the median answer 2 to 3 times slower (bench/README.md).
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 20}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page read while a message is written; IMMEDIATE avoids "database is
    # locked" when two requests upgrade a read to a write at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
# The languages a contact may choose with `LANG <code>`; demo/locale translates the
# demo's own texts (the REGISTER dialogue, the default reply, the help text).
LANGUAGES = [("en", "English"), ("fr", "Français"), ("sw", "Kiswahili")]
LOCALE_PATHS = [BASE_DIR / "demo" / "locale"]
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

# Scaling out: a broker for Celery, a Redis for the channel layer and the shared cache
# (rate limits). Without them, everything stays in this process.
REDIS_URL = os.environ.get("CHANNEL_LAYER_URL") or os.environ.get("REDIS_URL")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup otherwise closes the database connection around every task (and,
# in a prefork worker, the whole PostgreSQL pool): a reconnection per SMS.
CELERY_DB_REUSE_MAX = 100
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    if REDIS_URL else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

INSTALLED_BACKENDS = {
    "httptester-public": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
    "httptester-private": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"},
}
SMSROUTER_APPS = [
    # First, so that an answer reaches its session before a keyword handler sees it.
    "smsrouter.contrib.conversations.ConversationsApp",
    "smsrouter.contrib.echo.EchoApp",
    "demo.sms.JoinHandler",
    "demo.sms.AddHandler",
    "demo.sms.StatsApp",
]
SMSROUTER_PROCESSING = os.environ.get("SMSROUTER_PROCESSING", "inline")
SMSROUTER_DEFAULT_RESPONSE = _(
    "Sorry, I didn't understand. Try: ECHO <text>, PING, JOIN <name> or ADD 2 3."
)
SMSROUTER_HELP = _(
    "Send REGISTER to register, STOP to receive no more messages, START to receive them "
    "again, or LANG <code> to change your language (en, fr, sw)."
)
SMSROUTER_CONVERSATIONS = ["demo.sms.Register"]
# The httptester, the page `make run` opens, follows DEBUG: with DEBUG on, this machine's
# browser and scripts use it without a login; with DEBUG off it is not served at all, and
# True would serve it to staff users only (docs/security.md).
SMSROUTER_HTTPTESTER = None
