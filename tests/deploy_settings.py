"""A production-like settings module that leaves open everything `manage.py check --deploy`
warns of: DEBUG off, Kannel, Vumi and HTTP backends without a token, Twilio without its
signature check, the httptester on, and the demo's httptester backends.

tests/test_checks.py runs the check against it in a subprocess, and
tests/test_httptester_browser.py serves it, to use the tester as a staff user would. The
`kannel-signed` backend, which has a token, is what none of the warnings may name.
"""

import os

from demo.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["sms.example.org", "127.0.0.1"]
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "deploy-settings-of-the-tests-not-secret")

INSTALLED_BACKENDS = {
    **INSTALLED_BACKENDS,  # noqa: F405 - the demo's two httptester backends
    "kannel": {
        "ENGINE": "smsrouter.backends.kannel.KannelBackend",
        "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
        "delivery_report_url": "https://sms.example.org",
    },
    "kannel-signed": {
        "ENGINE": "smsrouter.backends.kannel.KannelBackend",
        "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
        "token": "a-long-random-string-of-the-deploy-settings",
    },
    "vumi": {
        "ENGINE": "smsrouter.backends.vumi.VumiBackend",
        "sendsms_url": "https://go.vumi.example/api/v1/go/http_api_nostream/c/messages.json",
    },
    "acme": {
        "ENGINE": "smsrouter.backends.http.HttpBackend",
        "outbound_url": "https://api.acme.example/sms?to={identity}&text={text}",
    },
    "twilio": {
        "ENGINE": "smsrouter.backends.twilio.TwilioBackend",
        "account_sid": "AC" + "0" * 32,
        "auth_token": "0" * 32,
        "from_number": "+15017122661",
        "validate_signature": False,
    },
}
SMSROUTER_HTTPTESTER = True
