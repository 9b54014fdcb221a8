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


def test_each_character_is_its_septets_and_reads_back():
    """Every character of the default alphabet and its extension table survives
    encode then decode; an extension character is the escape and its code."""
    text = "".join(sorted(gsm.BASIC | gsm.EXTENSION))
    assert gsm.decode(b"".join(gsm.units(text))) == (text, [])
    assert gsm.units("€§@") == [b"\x1b\x65", b"\x5f", b"\x00"]


@pytest.mark.parametrize(("septets", "text", "faults"), [
    (b"\x1b\x41", "A", []),          # an escape to nothing: the default alphabet's character
    (b"\x1b\x1b", " ", []),          # the escape to a further table: a space, per 23.038
    (b"a\x1b", "a\ufffd", ["the text ends in an escape (0x1B) with no character after it"]),
    (b"\x80", "\ufffd", ["octet 0 (0x80) is no GSM 03.38 septet"]),
])
def test_decode_reads_what_23_038_says_and_names_the_rest(septets, text, faults):
    assert gsm.decode(septets) == (text, faults)


@pytest.mark.parametrize("fill_bits", range(7))
def test_packing_after_fill_bits_unpacks_to_the_same_septets(fill_bits):
    septets = b"".join(gsm.units("A final @ at eight: 1234567@"))
    packed = gsm.pack(septets, fill_bits)
    assert len(packed) == (fill_bits + 7 * len(septets) + 7) // 8
    assert packed[0] & ((1 << fill_bits) - 1) == 0  # the fill bits are zeros
    assert gsm.unpack(packed, len(septets), fill_bits) == septets


def test_eight_septets_fill_seven_octets_and_a_last_at_sign_is_kept():
    """Seven octets hold eight septets exactly; the count, not a padding guess, ends them."""
    assert gsm.pack(b"\x00" * 8) == b"\x00" * 7
    assert gsm.unpack(gsm.pack(b"abcdefg\x00"), 8) == b"abcdefg\x00"


@pytest.mark.django_db
@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_messages_store_their_segment_count(sms):
    from smsrouter.models import Message

    sms.receive("echo " + "ሰ" * 100)
    assert sorted(Message.objects.values_list("direction", "segments")) == [("in", 2), ("out", 2)]
