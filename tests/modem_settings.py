"""Settings for the server process of the modem bridge's end-to-end tests: the demo's, with
one ModemBackend whose bridge listens where the test says (tests/test_modem.py)."""

import os

from demo.settings import *  # noqa: F403

INSTALLED_BACKENDS = {
    "modem": {
        "ENGINE": "smsrouter.backends.modem.ModemBackend",
        "bridge_url": os.environ["BRIDGE_URL"],
        "token": os.environ["MODEM_TOKEN"],
    }
}
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_SEND_BACKOFF = 0.2
SMSROUTER_SEND_BACKOFF_MAX = 1.0
SMSROUTER_SEND_MAX_ATTEMPTS = 1000  # a network outage outlasts the default 8 quick tries
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"smsrouter": {"handlers": ["console"], "level": "WARNING"}}}
