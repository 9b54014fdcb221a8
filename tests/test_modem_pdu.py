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


def test_septets_unpack_to_their_text():
    """The packed "How are you?" that smspdudecoder's documentation decodes: 12 septets."""
    assert gsm.decode(gsm.unpack(bytes.fromhex("C8F71D14969741F977FD07"), 12)) == (
        "How are you?", [])


def test_an_sms_deliver_is_read_field_by_field():
    """The SMS-DELIVER of the well-known PDU-mode walk-through (dreamfabric's, after
    23.040 9.2.2.1): a service centre's address, a national sender, +2 h, "hellohello"."""
    message = pdu.decode("07917283010010F5" "040BC87238880900F1" "0000" "99309251619580"
                         "0AE8329BFD4697D9EC37")
    assert (message.sender, message.text, message.concat) == ("27838890001", "hellohello", None)
    assert message.timestamp == datetime(1999, 3, 29, 15, 16, 59,
                                         tzinfo=timezone(timedelta(hours=2)))


def test_an_sms_deliver_without_a_service_centre_address_and_an_odd_number():
    """A TPDU of a question on 23.040's fields ("00": no service centre address): an
    international sender of 11 digits (a trailing F), +7 h, seven septets."""
    message = pdu.decode("00240B912618185532F700009040029161428207CAF03A2CA78701")
    assert (message.sender, message.text) == ("+62818155237", "Jakarta")
    assert message.timestamp == datetime(2009, 4, 20, 19, 16, 24,
                                         tzinfo=timezone(timedelta(hours=7)))


def test_the_walk_throughs_sms_submit_is_read_as_a_submit():
    """Its SMS-SUBMIT: TP-MR 0 (the phone sets it), a relative validity period, no report."""
    submit = pdu.decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
    assert submit == pdu.Submit("+46708251358", "hellohello", None, 0, False)


def test_an_alphanumeric_sender_is_read_as_its_letters():
    # TP-OA of 14 semi-octets, type 0xD0: "Vodafone" packed in GSM-7
    address = "0ED0" + gsm.pack(b"".join(gsm.units("Vodafone"))).hex().upper()
    hex_pdu = "00" + "04" + address + "0000" + "62213090000000" + "01" + "31"
    assert pdu.decode(hex_pdu).sender == "Vodafone"


@pytest.mark.parametrize("sender", ["Clinic", "MoH", "Afya [TZ]", "Hospitali1"])
def test_an_alphanumeric_sender_is_written_as_python_messaging_reads_it(sender):
    (hex_pdu,) = pdu.encode_deliver(sender, "Karibu", WHEN)
    assert SmsDeliver(hex_pdu).data["number"] == sender
    assert pdu.decode(hex_pdu).sender == sender


def test_a_sender_name_longer_than_11_septets_cannot_be_written():
    with pytest.raises(pdu.PduError, match="more than 11 letters"):
        pdu.encode_deliver("Hospitali ya Wilaya", "hi", WHEN)


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


# python-messaging, where it is right: GSM-7, 8-bit references, alphanumeric senders,
# status reports. Not for UCS-2: it writes an emoji as a 5-digit code point (no hex PDU)
# and reads one as two lone surrogates; nor for zones: it drops them.
@pytest.mark.parametrize("text", ["hello", "hello [x] €", "a" * 160, "@" * 8, "abcdefg@",
                                  "Dear patient,\n§ 3", "Ça va, Åsa? ¿Ñ?"])
def test_a_gsm_7_submit_is_python_messagings_octet_for_octet(text):
    """Theirs asks for no report and has no validity period (TP-VPF 0); else the same."""
    theirs = SmsSubmit("+255700000001", text).to_pdu()[0].pdu
    (ours,) = pdu.encode_submit("+255700000001", text, concat_reference=0)
    assert int(ours.hex[2:4], 16) == int(theirs[2:4], 16) | 0x20 | 0x10  # TP-SRR, TP-VPF
    assert ours.hex[4:26] == theirs[4:26]  # TP-MR, TP-DA, TP-PID, TP-DCS
    assert ours.hex[26:28] == "AD"  # TP-VP: a week
    assert ours.hex[28:] == theirs[26:]  # TP-UDL and TP-UD
    assert ours.length == len(theirs) // 2  # both lengths leave out the "00" in front


@pytest.mark.parametrize("text", ["hello", "hello [x] €", "Karibu, ziara yako ni Jumatatu",
                                  "@" * 16, "§", "ሰላም"])
def test_python_messaging_reads_our_delivers_as_we_wrote_them(text):
    (hex_pdu,) = pdu.encode_deliver("+255711000001", text, WHEN)
    theirs = SmsDeliver(hex_pdu).data
    assert (theirs["text"], theirs["number"], theirs["csca"]) == (
        text, "+255711000001", "+255700000000")
    assert theirs["date"] == WHEN.astimezone(timezone.utc).replace(tzinfo=None)


@pytest.mark.parametrize("sixteen_bit", [False, True])
def test_python_messaging_reads_our_parts_and_their_reference(sixteen_bit):
    text = "Xylophone " * 20
    hex_pdus = pdu.encode_deliver("+255711000001", text, WHEN, concat_reference=0x1234,
                                  sixteen_bit=sixteen_bit)
    theirs = [SmsDeliver(hex_pdu).data for hex_pdu in hex_pdus]
    reference = 0x1234 if sixteen_bit else 0x34
    assert [(d["ref"], d["cnt"], d["seq"]) for d in theirs] == [(reference, 2, 1),
                                                                (reference, 2, 2)]
    assert "".join(d["text"] for d in theirs) == text


def test_python_messaging_reads_our_status_report():
    theirs = SmsDeliver(pdu.encode_status_report(42, "+255700000001", 0x46, WHEN)).data
    assert (theirs["ref"], theirs["sr"]["recipient"], theirs["sr"]["status"]) == (
        42, "+255700000001", 0x46)
    assert theirs["sr"]["dt"] == WHEN.replace(tzinfo=None)


def test_a_long_submit_splits_where_python_messagings_does():
    """Both split at 153 septets behind a 6-octet header, so each part's packed text
    ends in the same octets (its concatenation reference is its own, so only the ends)."""
    parts = pdu.encode_submit("+255700000001", "Dawa " * 50, concat_reference=9)
    assert [pdu.decode(p.hex).concat for p in parts] == [pdu.Concat(9, 2, 1), pdu.Concat(9, 2, 2)]
    theirs = SmsSubmit("+255700000001", "Dawa " * 50).to_pdu()
    assert [p.pdu[-40:] for p in theirs] == [p.hex[-40:] for p in parts]


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


GSM_7_TEXT = st.text(alphabet="".join(sorted(gsm.BASIC | gsm.EXTENSION)), max_size=700)


@given(st.one_of(GSM_7_TEXT, st.text(max_size=400)), st.booleans(), st.integers(0, 0xFFFF))
def test_any_text_delivered_reads_back_as_itself(text, sixteen_bit, reference):
    parts = delivered(text, concat_reference=reference, sixteen_bit=sixteen_bit)
    assert "".join(p.text for p in parts) == text
    assert all(p.sender == "+255711000001" and p.timestamp == WHEN for p in parts)
    if len(parts) > 1:
        expected = reference if sixteen_bit else reference & 0xFF
        assert [p.concat for p in parts] == [pdu.Concat(expected, len(parts), n)
                                             for n in range(1, len(parts) + 1)]


@given(st.text(alphabet="".join(sorted(gsm.BASIC - set("0123456789"))), min_size=1,
               max_size=11))
def test_any_sender_name_reads_back_as_itself(name):
    (hex_pdu,) = pdu.encode_deliver(name, "hi", WHEN)
    assert pdu.decode(hex_pdu).sender == name


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


def decodes_or_names_its_fault(hex_pdu):
    """decode() either reads the PDU or raises a PduError with a reason, nothing else."""
    try:
        return pdu.decode(hex_pdu)
    except pdu.PduError as exc:
        assert str(exc)
        return None


@given(st.one_of(st.binary(max_size=200).map(bytes.hex),
                 st.text(alphabet="0123456789ABCDEFabcdef xyz", max_size=300)))
def test_any_hex_decodes_or_raises_a_pdu_error(hex_pdu):
    decodes_or_names_its_fault(hex_pdu)


SAMPLES = [*pdu.encode_deliver("+255711000001", "Habari 👋🏾 " * 20, WHEN, concat_reference=4,
                               sixteen_bit=True),
           *pdu.encode_deliver("Clinic", "Xylophone [€] " * 20, WHEN, concat_reference=5),
           *(p.hex for p in pdu.encode_submit("+255711000001", "Dawa " * 40, concat_reference=6)),
           pdu.encode_status_report(42, "+255700000001", 0x00, WHEN)]


@given(st.sampled_from(SAMPLES), st.data())
def test_a_cut_or_damaged_pdu_decodes_or_raises_a_pdu_error(hex_pdu, data):
    """The shapes that reach deep into the reader: a good PDU cut short anywhere, or with
    an octet changed anywhere (a length, a flag, a header, the text)."""
    octets = bytearray.fromhex(hex_pdu)
    decodes_or_names_its_fault(octets[:data.draw(st.integers(0, len(octets) - 1))].hex())
    octets[data.draw(st.integers(0, len(octets) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_names_its_fault(octets.hex())


def test_a_text_of_more_than_255_parts_cannot_be_sent():
    with pytest.raises(pdu.PduError, match="256 parts"):
        pdu.encode_submit("+255711000001", "a" * 153 * 256, concat_reference=1)


@pytest.mark.parametrize("number", ["", "+", "0800-SMS", "+2557" + "0" * 20])
def test_a_recipient_that_is_no_number_cannot_be_sent_to(number):
    with pytest.raises(pdu.PduError, match="is not a phone number"):
        pdu.encode_submit(number, "hi", concat_reference=0)
