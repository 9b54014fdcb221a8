"""The demo plus an `smpp` backend, for the `smsrouter_connect` process that
tests/test_backend_smpp.py starts against its SMSC process (port from SMSC_PORT)."""

import os

from demo.settings import *  # noqa: F403

INSTALLED_BACKENDS = {"smpp": {
    "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1",
    "port": int(os.environ["SMSC_PORT"]), "system_id": "smsrouter", "password": "secret",
    "reconnect_backoff": 0.5,
    # SMPP_ENQUIRE_LINK shortens the bind's lease (two unanswered rounds), for a test that
    # kills the process holding it and waits for it to run out.
    "enquire_link": float(os.environ.get("SMPP_ENQUIRE_LINK", 30)),
    "enquire_link_timeout": float(os.environ.get("SMPP_ENQUIRE_LINK", 10))}}
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_PROCESSING = "inline"
