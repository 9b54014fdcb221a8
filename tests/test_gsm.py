"""Segment counting: what a text costs in SMS."""

import pytest

from smsrouter import gsm


@pytest.mark.parametrize(
    ("text", "gsm7", "count"),
    [
        ("", True, 1),
        ("hello", True, 1),
        ("a" * 160, True, 1),
        ("a" * 161, True, 2),
        ("a" * 306, True, 2),
        ("a" * 307, True, 3),
        ("€" * 80, True, 1),        # extension characters cost two septets
        ("€" * 81, True, 2),
        ("a" * 152 + "€" + "a" * 10, True, 2),
        ("a" * 152 + "€" + "a" * 152, True, 3),  # an escape pair is never split
        ("Ça coûte 5€ [promo]", False, 1),       # û is not GSM-7
        ("ሰላም", False, 1),
        ("ሰ" * 70, False, 1),
        ("ሰ" * 71, False, 2),
        ("ሰ" * 134, False, 2),
        ("ሰ" * 135, False, 3),
        ("😀" * 35, False, 1),      # outside the BMP: two UTF-16 units each
        ("😀" * 36, False, 2),
    ],
)
def test_segments(text, gsm7, count):
    assert (gsm.is_gsm7(text), gsm.segments(text)) == (gsm7, count)


def test_coding():
    assert (gsm.coding("hello"), gsm.coding("ሰላም")) == (0, 2)


@pytest.mark.django_db
@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_messages_store_their_segment_count(sms):
    from smsrouter.models import Message

    sms.receive("echo " + "ሰ" * 100)
    assert sorted(Message.objects.values_list("direction", "segments")) == [("in", 2), ("out", 2)]
