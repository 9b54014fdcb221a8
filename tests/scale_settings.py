"""Settings for the scale-out processes the integration tests start: the demo's, plus a gateway.

Everything comes from the environment the test gives each process (see tests/stack.py).
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
    }
}
SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_SEND_BACKOFF = 0.2
SMSROUTER_SEND_BACKOFF_MAX = 1.0
SMSROUTER_SEND_MAX_ATTEMPTS = 1000
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"smsrouter": {"handlers": ["console"], "level": "ERROR"}}}
