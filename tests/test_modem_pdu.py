"""SMS PDUs of the modem bridge (smsrouter.modem.pdu): worked examples, python-messaging
as a reference where it is right, the faults python-gsmmodem-new 0.13.0 has, round trips
of any text, and malformed input that must be a PduError and nothing else."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from messaging.sms import SmsDeliver, SmsSubmit

from smsrouter import gsm
from smsrouter.modem import pdu

EAT = timezone(timedelta(hours=3))
WHEN = datetime(2026, 12, 3, 9, 0, 5, tzinfo=EAT)


def delivered(text, **options):
    """`text` as the modem gives it, read back: each part's Deliver."""
    return [pdu.decode(hex_pdu) for hex_pdu in pdu.encode_deliver("+255711000001", text, WHEN,
                                                                   **options)]


def submitted(text, reference=7):
    return [pdu.decode(part.hex) for part in pdu.encode_submit(
        "+255711000001", text, concat_reference=reference)]


# Worked examples.
def test_septets_pack_as_23_038_shows():
    """TS 23.038 6.1.2.1.1's example: "hellohello" in nine octets."""
    assert gsm.pack(b"".join(gsm.units("hellohello"))).hex().upper() == "E8329BFD4697D9EC37"
    assert gsm.unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10) == b"".join(gsm.units("hellohello"))


def test_an_sms_deliver_is_read_field_by_field():
    """The SMS-DELIVER of the classic walk-through of 23.040: a national sender, +2 h."""
    message = pdu.decode("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert (message.sender, message.text, message.concat) == ("27838890001", "hellohello", None)
    assert message.timestamp == datetime(1999, 3, 29, 15, 16, 59,
                                         tzinfo=timezone(timedelta(hours=2)))


def test_an_alphanumeric_sender_is_read_as_its_letters():
    # TP-OA of 14 semi-octets, type 0xD0: "Vodafone" packed in GSM-7
    address = "0ED0" + gsm.pack(b"".join(gsm.units("Vodafone"))).hex().upper()
    hex_pdu = "00" + "04" + address + "0000" + "62213090000000" + "01" + "31"
    assert pdu.decode(hex_pdu).sender == "Vodafone"


def test_a_submit_asks_for_a_report_and_leaves_the_reference_to_the_modem():
    (part,) = pdu.encode_submit("+255700000001", "hi", concat_reference=0)
    assert part.hex.startswith("00") and part.length == len(part.hex) // 2 - 1
    submit = pdu.decode(part.hex)
    assert (submit.recipient, submit.text, submit.reference, submit.status_report) == (
        "+255700000001", "hi", 0, True)


@pytest.mark.parametrize(("status", "state"), [
    (0x00, "delivered"), (0x02, "delivered"), (0x20, "pending"), (0x30, "pending"),
    (0x40, "failed"), (0x46, "failed"), (0x65, "failed")])
def test_a_status_report_says_delivered_pending_or_failed_by_tp_st(status, state):
    report = pdu.decode(pdu.encode_status_report(42, "+255700000001", status, WHEN))
    assert (report.reference, report.recipient, report.status, report.state) == (
        42, "+255700000001", status, state)
    assert report.discharged == WHEN


# python-messaging, where it is right.
@pytest.mark.parametrize("text", ["hello", "hello [x] €", "a" * 160, "@" * 8, "Dear patient,\n"])
def test_a_gsm_7_submit_carries_the_same_user_data_as_python_messagings(text):
    theirs = SmsSubmit("+255700000001", text).to_pdu()[0].pdu
    (ours,) = pdu.encode_submit("+255700000001", text, concat_reference=0)
    # Theirs has no validity period; from TP-UDL on the two are the same octets.
    assert ours.hex[-len(theirs) + 32:] == theirs[32:]


@pytest.mark.parametrize("text", ["hello", "hello [x] €", "Karibu, ziara yako ni Jumatatu"])
def test_python_messaging_reads_our_delivers_as_we_wrote_them(text):
    (hex_pdu,) = pdu.encode_deliver("+255711000001", text, WHEN)
    theirs = SmsDeliver(hex_pdu).data
    assert (theirs["text"], theirs["number"]) == (text, "+255711000001")


# What python-gsmmodem-new 0.13.0 gets wrong.
def test_the_first_character_after_a_16_bit_reference_header_is_kept():
    text = "Xylophone " * 20
    parts = delivered(text, concat_reference=0x1234, sixteen_bit=True)
    assert [p.concat for p in parts] == [pdu.Concat(0x1234, 2, 1), pdu.Concat(0x1234, 2, 2)]
    assert parts[0].text.startswith("Xylophone") and "".join(p.text for p in parts) == text


@pytest.mark.parametrize("text", ["abcdefg@", "@" * 16, "Report 7@", "x" * 159 + "@"])
def test_a_last_at_sign_is_kept_when_the_septets_fill_the_octets(text):
    assert [p.text for p in delivered(text)] == [text]
    assert [p.text for p in submitted(text)] == [text]


def test_the_section_sign_is_septet_0x5f():
    assert gsm.units("§") == [b"\x5f"]
    assert [p.text for p in delivered("§ 12 §")] == ["§ 12 §"]


@pytest.mark.parametrize("text", ["Habari 👋🏾", "😀" * 70, "ሰላም 🇹🇿 " * 12])
def test_emoji_go_as_utf_16_surrogate_pairs_and_are_never_split(text):
    parts = pdu.encode_submit("+255711000001", text, concat_reference=3)
    assert all(p.hex[2:].find("0008") != -1 for p in parts)  # TP-DCS 0x08: UCS-2
    assert "".join(pdu.decode(p.hex).text for p in parts) == text


# Any text, both ways.
@given(st.text(max_size=700))
def test_any_text_submitted_reads_back_as_itself(text):
    parts = submitted(text)
    assert "".join(p.text for p in parts) == text
    if len(parts) > 1:
        assert [p.concat for p in parts] == [pdu.Concat(7, len(parts), n)
                                             for n in range(1, len(parts) + 1)]
    assert len(parts) == gsm.segments(text)


@given(st.text(alphabet="".join(sorted(gsm.BASIC | gsm.EXTENSION)), max_size=700),
       st.booleans(), st.integers(0, 0xFFFF))
def test_any_gsm_7_text_delivered_reads_back_as_itself(text, sixteen_bit, reference):
    parts = delivered(text, concat_reference=reference, sixteen_bit=sixteen_bit)
    assert "".join(p.text for p in parts) == text
    assert all(p.sender == "+255711000001" and p.timestamp == WHEN for p in parts)


# Malformed input.
@pytest.mark.parametrize(("hex_pdu", "error"), [
    ("zz", "not hex"),
    ("", "the service centre's address length"),
    ("0004", "the sender's address's length"),
    ("00040B91", "the sender's address (octet"),
    ("0003", "TP-MTI 3 is reserved"),
    ("00040B915572110000F100006221309000000005E8", "TP-UDL says 5 septets"),
    ("00440B915572110000F1000062213090000000050599", "header claims 5 octets"),
    ("00040B915572110000F100006299309000000001E8", "is no date"),
])
def test_a_malformed_pdu_is_a_pdu_error_naming_what(hex_pdu, error):
    with pytest.raises(pdu.PduError, match=re.escape(error)):
        pdu.decode(hex_pdu)


@given(st.binary(max_size=200))
def test_any_octets_decode_or_raise_a_pdu_error(octets):
    try:
        pdu.decode(octets.hex())
    except pdu.PduError:
        pass


@pytest.mark.parametrize("number", ["", "+", "0800-SMS", "+2557" + "0" * 20])
def test_a_recipient_that_is_no_number_cannot_be_sent_to(number):
    with pytest.raises(pdu.PduError, match="is not a phone number"):
        pdu.encode_submit(number, "hi", concat_reference=0)
