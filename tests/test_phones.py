"""E.164 for backends that know their region; the raw form otherwise."""

import pytest

import smsrouter
from smsrouter.phones import normalize


@pytest.mark.parametrize(
    ("identity", "region", "expected"),
    [
        ("0754 000 001", "TZ", "+255754000001"),
        ("+255754000001", "TZ", "+255754000001"),
        ("255754000001", None, "255754000001"),
        ("0754000001", "tz", "+255754000001"),
        ("0712 345678", "KE", "+254712345678"),
        ("15888", "TZ", "15888"),               # a short code stays as it is
        ("user@example.org", "TZ", "user@example.org"),
        ("0754 000 001", "", "0754 000 001"),
    ],
)
def test_normalize(identity, region, expected):
    assert normalize(identity, region) == expected


@pytest.mark.django_db
def test_one_person_is_one_connection_however_the_gateway_writes_the_number(settings):
    settings.INSTALLED_BACKENDS = {
        "tz": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend", "default_region": "TZ"}
    }
    first = smsrouter.incoming("tz", "0754 000 001", "hi")
    second = smsrouter.incoming("tz", "+255754000001", "hi")
    (sent,) = smsrouter.send("hello", "0754000001", backend="tz")
    assert first.connection.pk == second.connection.pk == sent.connection.pk
    assert first.connection.identity == "+255754000001"
