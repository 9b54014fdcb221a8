"""The SMPP 3.4 codec: bytes as the spec lays them out, texts in and out, receipts."""

import pytest

from smsrouter import gsm
from smsrouter.smpp import pdu
from smsrouter.smpp.pdu import Command, Pdu, PduError
from tests.smsc import with_length


def test_bind_transceiver_is_encoded_byte_for_byte():
    """Header (length, id, status, sequence) then system_id, password, system_type as
    C-octet strings, interface_version 0x34, addr_ton, addr_npi, address_range."""
    bind = Pdu(Command.BIND_TRANSCEIVER, 1, fields={
        "system_id": "smsrouter", "password": "secret", "interface_version": 0x34})
    expected = bytes.fromhex(
        "00000026" "00000009" "00000000" "00000001"
        + b"smsrouter\0secret\0\0".hex() + "34" "00" "00" "00"
    )
    assert bind.encode() == expected
    assert Pdu.decode(expected) == Pdu(Command.BIND_TRANSCEIVER, 1, fields={
        "system_id": "smsrouter", "password": "secret", "system_type": "",
        "interface_version": 0x34, "addr_ton": 0, "addr_npi": 0, "address_range": ""})


def test_submit_sm_is_encoded_byte_for_byte():
    submit = Pdu(Command.SUBMIT_SM, 7, fields={
        "source_addr_ton": 5, "source_addr": "INFO", "dest_addr_ton": 1, "dest_addr_npi": 1,
        "destination_addr": "255700000001", "registered_delivery": 1, "short_message": b"hi"})
    expected = bytes.fromhex(
        "00000033" "00000004" "00000000" "00000007"
        "00"                                   # service_type ""
        "05" "00" + b"INFO\0".hex()            # source ton, npi, addr
        + "01" "01" + b"255700000001\0".hex()  # dest ton, npi, addr
        + "00" "00" "00"                       # esm_class, protocol_id, priority_flag
        "00" "00"                              # schedule_delivery_time, validity_period
        "01" "00" "00" "00"                    # registered_delivery, replace, coding, default id
        "02" + b"hi".hex()                     # sm_length, short_message
    )
    assert submit.encode() == expected
    decoded = Pdu.decode(expected)
    assert decoded.encode() == expected
    assert (decoded.get_str("destination_addr"), decoded.get_bytes("short_message"),
            decoded.get_int("registered_delivery")) == ("255700000001", b"hi", 1)


@pytest.mark.parametrize("command", [Command.ENQUIRE_LINK, Command.ENQUIRE_LINK_RESP,
                                     Command.UNBIND, Command.UNBIND_RESP, Command.GENERIC_NACK])
def test_bodiless_pdus_are_a_header(command):
    encoded = Pdu(command, 42).encode()
    assert encoded == pdu.HEADER.pack(16, command, 0, 42)
    assert Pdu.decode(encoded) == Pdu(command, 42)


def test_responses_round_trip_and_may_lack_a_body_on_error():
    resp = Pdu(Command.SUBMIT_SM, 9).response(message_id="abc123")
    assert Pdu.decode(resp.encode()) == Pdu(Command.SUBMIT_SM_RESP, 9, fields={"message_id": "abc123"})
    throttled = pdu.HEADER.pack(16, Command.SUBMIT_SM_RESP, pdu.ESME_RTHROTTLED, 9)
    assert Pdu.decode(throttled).command_status == pdu.ESME_RTHROTTLED
    assert pdu.status_name(0x58) == "ESME_RTHROTTLED (0x00000058)"


def test_optional_parameters_round_trip():
    deliver = Pdu(Command.DELIVER_SM, 3, fields={"short_message": b""},
                  tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"ab12\0", pdu.TLV_MESSAGE_STATE: b"\x02"})
    assert Pdu.decode(deliver.encode()).tlvs == deliver.tlvs


@pytest.mark.parametrize(("data", "status"), [
    (b"\0\0\0\x10", pdu.ESME_RINVCMDLEN),
    (pdu.HEADER.pack(20, Command.ENQUIRE_LINK, 0, 1), pdu.ESME_RINVCMDLEN),
    (pdu.HEADER.pack(16, 0x1234, 0, 1), pdu.ESME_RINVCMDID),
    (pdu.HEADER.pack(19, Command.SUBMIT_SM_RESP, 0, 1) + b"abc", pdu.ESME_RINVCMDLEN),
])
def test_malformed_pdus_are_refused_with_the_status_to_answer(data, status):
    with pytest.raises(PduError) as caught:
        Pdu.decode(data)
    assert caught.value.status == status


def test_overlong_strings_are_refused_when_encoding():
    with pytest.raises(ValueError, match="system_id takes at most 15 characters"):
        Pdu(Command.BIND_TRANSMITTER, fields={"system_id": "x" * 16}).encode()


def test_short_messages_take_gsm_py_s_septets_one_per_octet():
    text = "".join(sorted(gsm.BASIC | gsm.EXTENSION))
    assert pdu.gsm_decode(b"".join(gsm.units(text))) == text
    assert pdu.encode_text("@$_€") == (0, [b"\x00\x02\x11\x1b\x65"])


def test_a_short_gsm_text_is_one_part_in_the_default_alphabet():
    assert pdu.encode_text("Hello @ 5€") == (0, [b"Hello \x00 5\x1b\x65"])


def test_a_non_gsm_text_is_ucs2_never_latin1():
    coding, parts = pdu.encode_text("ሰላም")
    assert (coding, parts) == (8, ["ሰላም".encode("utf-16-be")])
    assert pdu.decode_text(parts[0], coding) == "ሰላም"


@pytest.mark.parametrize("text", [
    "a" * 160, "a" * 161, "a" * 306, "a" * 307, "€" * 80, "a" * 152 + "€",
    "ሰ" * 70, "ሰ" * 71, "ሰ" * 134, "ሰ" * 135, "😀" * 35, "a" * 66 + "😀",
])
def test_long_texts_split_as_gsm_py_counts_them(text):
    coding, parts = pdu.encode_text(text)
    assert len(parts) == gsm.segments(text)
    assert "".join(pdu.decode_text(part, coding) for part in parts) == text
    assert all(len(part) <= (153 if coding == 0 else 134) for part in parts) or len(parts) == 1


def test_a_long_amharic_text_goes_as_concatenated_ucs2_parts():
    text = "ሰላም ለዓለም። " * 15  # 165 UTF-16 units: three parts of at most 67
    parts = list(pdu.submit_parts(text, 300, destination_addr="255700000001"))
    assert len(parts) == gsm.segments(text) == 3
    decoded = []
    for number, part in enumerate(parts, start=1):
        assert (part.get_int("esm_class"), part.get_int("data_coding")) == (0x40, 8)
        udh, payload = pdu.split_udh(part.get_bytes("short_message"))
        assert part.get_bytes("short_message")[:6] == bytes([5, 0, 3, 300 & 0xFF, 3, number])
        assert udh == (300 & 0xFF, 3, number)
        decoded.append(pdu.decode_text(payload, 8))
    assert "".join(decoded) == text


def test_a_sixteen_bit_reference_udh_is_read_too():
    assert pdu.split_udh(bytes([6, 8, 4, 1, 2, 2, 1]) + b"hi") == ((258, 2, 1), b"hi")


def test_decoding_by_data_coding():
    assert pdu.decode_text(b"caf\xe9", 3) == "café"
    assert pdu.decode_text(b"hi", 1) == "hi"
    assert pdu.decode_text(b"\x1b\x14x", 0) == "^x"


def receipt(text: str, **tlvs: bytes) -> Pdu:
    return Pdu(Command.DELIVER_SM, 1, fields={"esm_class": 4, "short_message": text.encode()},
               tlvs={getattr(pdu, name): value for name, value in tlvs.items()})


def test_a_receipt_text_is_parsed():
    text = pdu.receipt_text("a1b2c3", "UNDELIV", "012")
    assert text.startswith("id:a1b2c3 sub:001 dlvrd:000 submit date:2601011200 done date:")
    assert pdu.parse_receipt(receipt(text)) == pdu.Receipt("a1b2c3", "UNDELIV", "012")


def test_receipt_tlvs_win_over_the_text():
    parsed = pdu.parse_receipt(receipt("id:1 stat:ENROUTE",
                                       TLV_RECEIPTED_MESSAGE_ID=b"0x1F\0", TLV_MESSAGE_STATE=b"\x02"))
    assert (parsed.message_id, parsed.stat) == ("0x1F", "DELIVRD")


def test_a_text_that_is_no_receipt_is_refused():
    with pytest.raises(PduError, match="not a delivery receipt"):
        pdu.parse_receipt(receipt("hello"))


DELIVER = Pdu(Command.DELIVER_SM, 7, fields={
    "source_addr": "255700000001", "source_addr_ton": 1, "short_message": b"hello"}).encode()


@pytest.mark.parametrize(("data", "problem", "short_message"), [
    (with_length(DELIVER[:-6] + b"\xc8hello"), "sm_length 200 runs past the PDU (5 octets left)",
     b"hello"),
    (with_length(DELIVER[:-6] + b"\xffhello"), "sm_length 255 runs past the PDU", b"hello"),
    (with_length(DELIVER + b"\x04\x24\x00\x09abc"),
     "optional parameter 0x0424 of 9 octets runs past the PDU (3 octets left)", b"hello"),
    (with_length(DELIVER + b"\x04\x24"), "2 octets after the fields are no optional parameter",
     b"hello"),
    (with_length(DELIVER[:20]), "source_addr has no terminating NUL", b""),
    (with_length(DELIVER[:-6]), "the body ends before short_message", b""),
    (with_length(DELIVER[:16] + b"\0\x01\x01" + b"9" * 30 + DELIVER[31:]),
     "source_addr has 30 octets, more than 20", b"hello"),
])
def test_a_body_that_lies_is_read_as_far_as_it_goes(data, problem, short_message):
    """The header is sound, so the refusal carries the PDU as read, each field cut at the
    end, and what was wrong: a deliver_sm must still be answered, and stored if it reads."""
    with pytest.raises(PduError) as caught:
        Pdu.decode(data)
    partial = caught.value.partial
    assert partial is not None and partial.command_id == Command.DELIVER_SM
    assert partial.sequence_number == 7 and partial.raw == data
    assert any(p.startswith(problem) for p in partial.problems), partial.problems
    assert partial.get_bytes("short_message") == short_message
    assert str(caught.value).startswith("deliver_sm 7: ")


def test_a_header_that_cannot_be_read_carries_no_partial_pdu():
    with pytest.raises(PduError) as caught:
        Pdu.decode(pdu.HEADER.pack(16, 0x1234, 0, 1))
    assert caught.value.partial is None


def test_a_response_may_end_early_but_a_request_may_not():
    assert Pdu.decode(pdu.HEADER.pack(16, Command.SUBMIT_SM_RESP, 0, 1)).fields == {}
    with pytest.raises(PduError, match="the body ends before service_type"):
        Pdu.decode(pdu.HEADER.pack(16, Command.DELIVER_SM, 0, 1))


@pytest.mark.parametrize(("octets", "problem", "payload"), [
    (b"", "esm_class announces a user data header but short_message is empty", b""),
    (b"\x05\x00\x03\x01", "UDH length 5 but 3 octets follow it", b"\x05\x00\x03\x01"),
    (b"\x03\x00\x03\x07hello", "UDH element 0x00 of 3 octets runs past the header", b"hello"),
    (b"\x01\x00hi", "the UDH ends inside an element's header (octet 0)", b"hi"),
    (b"\x04\x00\x02\x07\x02hi", "concatenation element 0x00 has 2 octets, not 3", b"hi"),
    (b"\x05\x00\x03\x07\x00\x01hi", "concatenation part 1 of 0", b"hi"),
    (b"\x05\x00\x03\x07\x02\x00hi", "concatenation part 0 of 2", b"hi"),
    (b"\x05\x00\x03\x07\x02\x03hi", "concatenation part 3 of 2", b"hi"),
    (b"\x06\x08\x04\x01\x02\x02\x03hi", "concatenation part 3 of 2", b"hi"),
])
def test_a_udh_that_lies_is_refused_with_the_octets_that_look_like_text(octets, problem, payload):
    with pytest.raises(pdu.UdhError) as caught:
        pdu.split_udh(octets)
    assert (str(caught.value), caught.value.payload) == (problem, payload)


def test_other_udh_elements_are_passed_over():
    port_addressing = bytes([0x04, 2, 0x0B, 0x84])  # IEI 4: 8-bit application ports
    assert pdu.split_udh(bytes([len(port_addressing) + 5]) + port_addressing
                         + bytes([0, 3, 9, 2, 1]) + b"hi") == ((9, 2, 1), b"hi")
    assert pdu.split_udh(b"\x00hi") == (None, b"hi")


@pytest.mark.parametrize(("octets", "coding", "problem", "text"), [
    (b"\x00a\x00", 8, "not utf-16-be: truncated data at octet 2", "a\ufffd"),
    (b"\xd8\x00\x00a", 8, "not utf-16-be: illegal UTF-16 surrogate at octet 0", "\ufffda"),
    (b"\x80a\xff", 0, "octet 0 (0x80) is no GSM 03.38 septet; octet 2 (0xFF) is no GSM 03.38 "
     "septet", "\ufffda\ufffd"),
    (b"a\x1b", 0, "the text ends in an escape (0x1B) with no character after it", "a\ufffd"),
    (b"caf\xe9", 1, "not ascii: ordinal not in range(128) at octet 3", "caf\ufffd"),
    (b"\x01\xe9", 4, "data_coding 0x04 is not one this ESME reads", "\x01é"),
    (b"hi", 0xF0, "data_coding 0xF0 is not one this ESME reads", "hi"),
])
def test_a_text_its_coding_cannot_read_is_refused_with_its_best_reading(octets, coding, problem,
                                                                        text):
    with pytest.raises(pdu.TextError) as caught:
        pdu.decode_text(octets, coding)
    assert (str(caught.value), caught.value.text) == (problem, text)


def test_many_faults_in_one_text_are_summed_up():
    with pytest.raises(pdu.TextError, match=r"octet 2 \(0x80\) is no GSM 03.38 septet and 2 more$"):
        pdu.decode_text(b"\x80" * 5, 0)
