"""The demo as bench/e2e.py serves it: production-like, plus a Kannel backend to load.

DEBUG off (Django would otherwise keep every query in memory) and logging at WARNING, so
the figures measure message handling rather than console output. The Kannel backend's
replies go to bench/fake_kannel.py, whose URL bench/e2e.py passes in FAKE_KANNEL_URL. The
apps are echo and a keyword handler, as bench/routing_vs_rapidsms.py routes them in-process.
In Celery mode, CELERY_QUEUE names a queue of the run's own, so that tasks left over from
another run never reach its worker.
"""

import os

from demo.settings import *  # noqa: F403
from demo.settings import INSTALLED_BACKENDS

DEBUG = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

INSTALLED_BACKENDS["kannel"] = {
    "ENGINE": "smsrouter.backends.kannel.KannelBackend",
    "sendsms_url": os.environ["FAKE_KANNEL_URL"],
}
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp", "demo.sms.JoinHandler"]
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
