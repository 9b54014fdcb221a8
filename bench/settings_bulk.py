"""The demo as bench/outbound_bulk.py runs it: one Kannel backend aimed at the fake gateway.

DEBUG off (Django would keep every query in memory) and logging at WARNING, so the figure
is the cost of sending rather than of console output. bench/outbound_bulk.py passes the
fake gateway's sendsms URL in FAKE_KANNEL_URL and a fresh SQLite file in DATABASE_URL.
"""

import os

from demo.settings import *  # noqa: F403

DEBUG = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
INSTALLED_BACKENDS = {
    "kannel": {
        "ENGINE": "smsrouter.backends.kannel.KannelBackend",
        "sendsms_url": os.environ["FAKE_KANNEL_URL"],
    },
}
SMSROUTER_PROCESSING = "inline"
