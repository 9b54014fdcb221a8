"""Settings for the fault tests' web servers: the demo's, in inline mode, plus a gateway.

Everything comes from the environment the test gives each process (see tests/stack.py):
DATABASE_URL, GATEWAY_URL; SMSROUTER_TEST_TICKS (a file) adds tests.periodic_apps'
TickApp, and SMSROUTER_TEST_NO_CHANNEL_LAYER=1 removes CHANNEL_LAYERS.
"""

import os

from demo.settings import *  # noqa: F403

INSTALLED_BACKENDS = {
    "gw": {
        "ENGINE": "smsrouter.backends.http.HttpBackend",
        "identity_param": "from",
        "text_param": "text",
        "outbound_url": f"{os.environ['GATEWAY_URL']}/send",
        "outbound_params": {"to": "{identity}", "text": "{text}", "ref": "{id}"},
        "timeout": 1,  # a hung gateway costs a second per attempt
    }
}
SMSROUTER_PROCESSING = "inline"
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
if os.environ.get("SMSROUTER_TEST_TICKS"):
    SMSROUTER_APPS.append("tests.periodic_apps.TickApp")
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_SEND_BACKOFF = 0.2
SMSROUTER_SEND_BACKOFF_MAX = 1.0
SMSROUTER_SEND_MAX_ATTEMPTS = 1000
SMSROUTER_SWEEP_EVERY = 0.5
SMSROUTER_RECOVER_AFTER = 2

if os.environ.get("SMSROUTER_TEST_NO_CHANNEL_LAYER"):
    del CHANNEL_LAYERS  # noqa: F821

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "formatters": {"timed": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
           "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
           "loggers": {"smsrouter": {"handlers": ["console"], "level": "WARNING"}}}
