"""The demo plus a `kannel` backend, for the server that tests/test_kannel_real.py starts.

The test chooses ports and secrets for each run and passes them in the environment.
"""

import os

from demo.settings import *  # noqa: F403
from demo.settings import INSTALLED_BACKENDS

INSTALLED_BACKENDS["kannel"] = {
    "ENGINE": "smsrouter.backends.kannel.KannelBackend",
    "sendsms_url": f"http://127.0.0.1:{os.environ['KANNEL_SENDSMS_PORT']}/cgi-bin/sendsms",
    "sendsms_params": {
        "username": os.environ["KANNEL_USERNAME"],
        "password": os.environ["KANNEL_PASSWORD"],
        "from": os.environ["KANNEL_SENDER"],
    },
    "delivery_report_url": os.environ["SMSROUTER_PUBLIC_URL"],
    "token": os.environ["KANNEL_TOKEN"],
}
