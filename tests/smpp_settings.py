"""The demo plus an `smpp` backend, for the `smsrouter_connect` process that
tests/test_backend_smpp.py starts against its SMSC process (port from SMSC_PORT)."""

import os

from demo.settings import *  # noqa: F403

INSTALLED_BACKENDS = {"smpp": {
    "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1",
    "port": int(os.environ["SMSC_PORT"]), "system_id": "smsrouter", "password": "secret",
    "reconnect_backoff": 0.5}}
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_PROCESSING = "inline"
