"""Settings for the fault tests' web servers: the scale tests', in inline mode.

Everything comes from the environment the test gives each process (see tests/stack.py):
DATABASE_URL, GATEWAY_URL; SMSROUTER_TEST_TICKS (a file) adds tests.periodic_apps'
TickApp, SMSROUTER_TEST_NO_CHANNEL_LAYER=1 removes CHANNEL_LAYERS, and
SMSROUTER_TEST_GATEWAY_TIMEOUT (seconds) replaces the gateway's timeout of 1 s.
"""

import os

from tests.scale_settings import *  # noqa: F403

# A hung gateway costs a second per attempt, unless a test needs the hang to outlast it.
INSTALLED_BACKENDS["gw"]["timeout"] = float(os.environ.get("SMSROUTER_TEST_GATEWAY_TIMEOUT", 1))  # noqa: F405
SMSROUTER_PROCESSING = "inline"
if os.environ.get("SMSROUTER_TEST_TICKS"):
    SMSROUTER_APPS = [*SMSROUTER_APPS, "tests.periodic_apps.TickApp"]  # noqa: F405
SMSROUTER_SWEEP_EVERY = 0.5
SMSROUTER_RECOVER_AFTER = 2

if os.environ.get("SMSROUTER_TEST_NO_CHANNEL_LAYER"):
    del CHANNEL_LAYERS  # noqa: F821

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "formatters": {"timed": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
           "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
           "loggers": {"smsrouter": {"handlers": ["console"], "level": "WARNING"}}}
