"""The demo as bench/outbound_bulk.py runs it: bench/settings_e2e.py (DEBUG off, logging at
WARNING) with only its Kannel backend, aimed at the fake gateway. bench/outbound_bulk.py
passes the gateway's sendsms URL in FAKE_KANNEL_URL and a fresh SQLite file in DATABASE_URL.
"""

from settings_e2e import *  # noqa: F403
from settings_e2e import INSTALLED_BACKENDS

INSTALLED_BACKENDS = {"kannel": INSTALLED_BACKENDS["kannel"]}
SMSROUTER_PROCESSING = "inline"
