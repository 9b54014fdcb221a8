"""SMPP 3.4 PDUs as bytes and back, the texts inside them, and delivery receipts.

A PDU is a 16-octet header (command_length, command_id, command_status,
sequence_number, each a big-endian unsigned 32-bit integer) and a body of mandatory
fields in a fixed order (C-octet strings, NUL-terminated; 1-octet integers; the
short_message octets after their sm_length), then optional TLVs (tag, length, value).

Texts: data_coding 0 is "the SMSC default alphabet". We take it to be GSM 03.38,
unpacked, one septet per octet (the extension table behind the 0x1B escape), as most
SMSCs and Kannel, Jasmin and OpenSMPPBox do; anything GSM-7 cannot carry goes as UCS-2
(data_coding 8, UTF-16BE). Never latin-1 as a fallback: it loses every non-latin letter.

Malformed input: an SMSC redelivers what it was refused, so a PDU that cannot be read as
sent must still be taken as far as it can be. Every refusal here is a PduError: a header
that cannot be read (a generic_nack's case, SMPP 3.4 section 4.3) carries nothing more; a
bad body carries the PDU as far as it could be read (`partial`, its faults in `problems`),
a bad user data header the octets that look like text (UdhError.payload), and a text its
data_coding cannot read its best reading (TextError.text).
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from smsrouter import gsm

HEADER = struct.Struct(">IIII")
HEADER_SIZE = HEADER.size
#: Larger PDUs are refused before reading their body: SMPP 3.4 bodies stay well under.
MAX_PDU_SIZE = 64 * 1024
INTERFACE_VERSION = 0x34


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


RESPONSE_BIT = 0x80000000

#: command_status values this ESME reads or writes, with the spec's names for messages.
ESME_ROK = 0x00
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RX_R_APPN = 0x66
STATUS_NAMES = {
    ESME_ROK: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", ESME_RINVCMDLEN: "ESME_RINVCMDLEN",
    ESME_RINVCMDID: "ESME_RINVCMDID", 0x04: "ESME_RINVBNDSTS", ESME_RALYBND: "ESME_RALYBND",
    ESME_RSYSERR: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR", 0x0B: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL", ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RINVSYSID: "ESME_RINVSYSID", ESME_RMSGQFUL: "ESME_RMSGQFUL",
    0x45: "ESME_RSUBMITFAIL", ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RX_T_APPN: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN", ESME_RX_R_APPN: "ESME_RX_R_APPN",
}

#: Optional parameters we read.
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424
#: A long message's parts as SAR TLVs rather than a UDH: the 16-bit reference, how many
#: parts, this part's number (from 1).
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F

#: esm_class bits.
ESM_UDHI = 0x40
ESM_RECEIPT = 0x04

#: data_coding values.
CODING_DEFAULT, CODING_IA5, CODING_LATIN1, CODING_UCS2 = 0, 1, 3, 8

#: Each PDU, user data header or text this ESME could not take as it came, at WARNING and
#: with the PDU's octets in hex: the evidence an SMSC's operator asks for.
malformed_log = logging.getLogger("smsrouter.smpp.malformed")

# Field layouts: (name, kind, max octets for a C-octet string including its NUL).
# kind "c": C-octet string; "B": 1-octet integer; "sm": sm_length then short_message.
BIND = (
    ("system_id", "c", 16), ("password", "c", 9), ("system_type", "c", 13),
    ("interface_version", "B", 1), ("addr_ton", "B", 1), ("addr_npi", "B", 1),
    ("address_range", "c", 41),
)
SHORT_MESSAGE = (
    ("service_type", "c", 6), ("source_addr_ton", "B", 1), ("source_addr_npi", "B", 1),
    ("source_addr", "c", 21), ("dest_addr_ton", "B", 1), ("dest_addr_npi", "B", 1),
    ("destination_addr", "c", 21), ("esm_class", "B", 1), ("protocol_id", "B", 1),
    ("priority_flag", "B", 1), ("schedule_delivery_time", "c", 17),
    ("validity_period", "c", 17), ("registered_delivery", "B", 1),
    ("replace_if_present_flag", "B", 1), ("data_coding", "B", 1),
    ("sm_default_msg_id", "B", 1), ("short_message", "sm", 254),
)
BIND_RESP = (("system_id", "c", 16),)
SM_RESP = (("message_id", "c", 65),)
LAYOUTS: dict[int, tuple[tuple[str, str, int], ...]] = {
    Command.BIND_RECEIVER: BIND, Command.BIND_TRANSMITTER: BIND, Command.BIND_TRANSCEIVER: BIND,
    Command.BIND_RECEIVER_RESP: BIND_RESP, Command.BIND_TRANSMITTER_RESP: BIND_RESP,
    Command.BIND_TRANSCEIVER_RESP: BIND_RESP,
    Command.SUBMIT_SM: SHORT_MESSAGE, Command.DELIVER_SM: SHORT_MESSAGE,
    Command.SUBMIT_SM_RESP: SM_RESP, Command.DELIVER_SM_RESP: SM_RESP,
}


class PduError(ValueError):
    """Bytes that are not a well-formed PDU; `status` is what a peer is told.

    `partial` is None when the header cannot be read (answer a generic_nack with
    `status`); otherwise the PDU as far as it could be read, to be handled as sent.
    """

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN,
                 partial: Pdu | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.partial = partial


class UdhError(PduError):
    """A user data header that lies about its length or holds a bad concatenation element.

    `payload` is the text's octets as well as they can be told: those after the header
    when its length fits the short_message, else all of them, header included.
    """

    def __init__(self, message: str, payload: bytes) -> None:
        super().__init__(message)
        self.payload = payload


class TextError(PduError):
    """A short_message its data_coding cannot read; `text` is the best reading, with each
    unit that cannot be read as U+FFFD, and a coding we do not know read octet by octet."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


def status_name(status: int) -> str:
    """The spec's name of a command_status, e.g. "ESME_RTHROTTLED (0x00000058)"."""
    return f"{STATUS_NAMES.get(status, 'unknown status')} (0x{status:08X})"


@dataclass
class Pdu:
    """One PDU: its header and its fields by the spec's names; TLVs by tag."""

    command_id: int
    sequence_number: int = 0
    command_status: int = ESME_ROK
    fields: dict[str, int | str | bytes] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)
    #: What decode() found wrong in the body; the fields are as far as they could be read.
    problems: list[str] = field(default_factory=list)
    #: The octets decode() read this PDU from, for the log.
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def get_str(self, name: str) -> str:
        value = self.fields.get(name, "")
        assert isinstance(value, str)
        return value

    def get_int(self, name: str) -> int:
        value = self.fields.get(name, 0)
        assert isinstance(value, int)
        return value

    def get_bytes(self, name: str) -> bytes:
        value = self.fields.get(name, b"")
        assert isinstance(value, bytes)
        return value

    def response(self, command_status: int = ESME_ROK, **fields: int | str | bytes) -> Pdu:
        """The answer to this request: same sequence_number, the response command_id."""
        return Pdu(self.command_id | RESPONSE_BIT, self.sequence_number, command_status, fields)

    def encode(self) -> bytes:
        body = bytearray()
        for name, kind, size in LAYOUTS.get(self.command_id, ()):
            value = self.fields.get(name)
            if kind == "c":
                text = str(value or "").encode("ascii")
                if len(text) >= size:
                    raise ValueError(f"{name} takes at most {size - 1} characters, not {len(text)}")
                body += text + b"\0"
            elif kind == "B":
                body.append(value if isinstance(value, int) else 0)
            else:
                octets = value if isinstance(value, bytes) else b""
                if len(octets) > size:
                    raise ValueError(f"{name} takes at most {size} octets, not {len(octets)}")
                body.append(len(octets))
                body += octets
        for tag, value in self.tlvs.items():
            body += struct.pack(">HH", tag, len(value)) + value
        return HEADER.pack(HEADER_SIZE + len(body), self.command_id, self.command_status,
                           self.sequence_number) + bytes(body)

    @classmethod
    def decode(cls, data: bytes) -> Pdu:
        """One whole PDU from its bytes (header included); PduError if malformed.

        A response with an error status may come without its body: absent fields keep
        their defaults. A body that lies (a string without its NUL, an sm_length or an
        optional parameter running past the end, a request's missing fields) is read the
        way SMPP asks a receiver to be liberal, each field cut at the end of the PDU, and
        the PduError carries that reading as `partial`.
        """
        if len(data) < HEADER_SIZE:
            raise PduError(f"{len(data)} octets is shorter than a PDU header")
        length, command_id, status, sequence = HEADER.unpack_from(data)
        if length != len(data):
            raise PduError(f"command_length {length} but {len(data)} octets")
        if command_id not in Command._value2member_map_:
            raise PduError(f"unknown command_id 0x{command_id:08X}", ESME_RINVCMDID)
        pdu = cls(command_id, sequence, status, raw=bytes(data))
        offset = pdu._decode_fields(data, HEADER_SIZE)
        pdu._decode_tlvs(data, offset)
        if pdu.problems:
            raise PduError(f"{Command(command_id).name.lower()} {sequence}: "
                           + "; ".join(pdu.problems), partial=pdu)
        return pdu

    def _decode_fields(self, data: bytes, offset: int) -> int:
        """Read the mandatory fields from `offset`; where the optional ones start."""
        length = len(data)
        for name, kind, size in LAYOUTS.get(self.command_id, ()):
            if offset >= length:
                if not self.is_response:
                    self.problems.append(f"the body ends before {name}")
                return offset
            if kind == "B":
                self.fields[name] = data[offset]
                offset += 1
                continue
            if kind == "c":
                end = data.find(b"\0", offset)
                self.fields[name] = data[offset:end if end >= 0 else length].decode("latin-1")
                if end < 0:
                    self.problems.append(f"{name} has no terminating NUL")
                    return length
                if end - offset >= size:
                    self.problems.append(f"{name} has {end - offset} octets, more than {size - 1}")
                offset = end + 1
            else:
                declared = data[offset]
                self.fields[name] = octets = data[offset + 1:offset + 1 + declared]
                if len(octets) < declared:
                    self.problems.append(
                        f"sm_length {declared} runs past the PDU ({len(octets)} octets left)")
                    return length
                if declared > size:
                    self.problems.append(f"sm_length {declared} is more than {size}")
                offset += 1 + declared
        return offset

    def _decode_tlvs(self, data: bytes, offset: int) -> None:
        length = len(data)
        while offset < length:
            if offset + 4 > length:
                self.problems.append(
                    f"{length - offset} octets after the fields are no optional parameter")
                return
            tag, size = struct.unpack_from(">HH", data, offset)
            value = data[offset + 4:offset + 4 + size]
            if len(value) < size:
                self.problems.append(f"optional parameter 0x{tag:04X} of {size} octets "
                                     f"runs past the PDU ({len(value)} octets left)")
            self.tlvs[tag] = value
            offset += 4 + size


def gsm_decode(octets: bytes) -> str:
    """Unpacked GSM 03.38 septets as text (smsrouter.gsm.decode); TextError for an octet
    above 0x7F (no septet) or an escape with nothing after it."""
    text, faults = gsm.decode(octets)
    if faults:
        raise TextError(_summary(faults), text)
    return text


def _summary(faults: list[str]) -> str:
    """The first few faults found, and how many more: a text may have 255 of them."""
    more = f" and {len(faults) - 3} more" if len(faults) > 3 else ""
    return "; ".join(faults[:3]) + more


def encode_text(text: str) -> tuple[int, list[bytes]]:
    """The data_coding and short_message octets of each SMS part, without their UDH, as
    smsrouter.gsm.parts() splits the text."""
    gsm7, parts = gsm.parts(text)
    return (CODING_DEFAULT if gsm7 else CODING_UCS2), parts


#: Concatenation information elements (3GPP TS 23.040 9.2.3.24.1, .8): IEI and length.
CONCATENATION = {0x00: 3, 0x08: 4}


def split_udh(octets: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """A UDH-prefixed short_message as (reference, total, number) of its concatenation
    element (8- or 16-bit reference; None without one) and the payload after the UDH.

    UdhError when the header runs past the octets, an element runs past the header, or
    the concatenation element is not 3 (or 4) octets naming part 1 to total of total > 0.
    """
    if not octets:
        raise UdhError("esm_class announces a user data header but short_message is empty", b"")
    header_length = octets[0]
    if 1 + header_length > len(octets):
        raise UdhError(f"UDH length {header_length} but {len(octets) - 1} octets follow it", octets)
    header, payload = octets[1:1 + header_length], octets[1 + header_length:]
    concat = None
    offset = 0
    while offset < len(header):
        if offset + 2 > len(header):
            raise UdhError(f"the UDH ends inside an element's header (octet {offset})", payload)
        iei, size = header[offset], header[offset + 1]
        value = header[offset + 2:offset + 2 + size]
        if len(value) < size:
            raise UdhError(f"UDH element 0x{iei:02X} of {size} octets runs past the header",
                           payload)
        if iei in CONCATENATION and size != CONCATENATION[iei]:
            raise UdhError(f"concatenation element 0x{iei:02X} has {size} octets, "
                           f"not {CONCATENATION[iei]}", payload)
        if iei == 0x00:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08:
            concat = ((value[0] << 8) | value[1], value[2], value[3])
        offset += 2 + size
    if concat is not None and not 1 <= concat[2] <= concat[1]:
        raise UdhError(f"concatenation part {concat[2]} of {concat[1]}", payload)
    return concat, payload


def decode_text(octets: bytes, data_coding: int) -> str:
    """A short_message's text by its data_coding: 0 GSM 03.38, 1 ASCII, 3 latin-1, 8 UTF-16BE.

    TextError for octets the coding cannot read (odd-length or unpaired UTF-16, invalid
    septets, ASCII above 0x7F) and for any other data_coding, whose best reading keeps each
    octet as a character (latin-1), so nothing is dropped.
    """
    if data_coding == CODING_DEFAULT:
        return gsm_decode(octets)
    if data_coding == CODING_LATIN1:
        return octets.decode("latin-1")
    if data_coding not in (CODING_UCS2, CODING_IA5):
        raise TextError(f"data_coding 0x{data_coding:02X} is not one this ESME reads",
                        octets.decode("latin-1"))
    codec = "utf-16-be" if data_coding == CODING_UCS2 else "ascii"
    try:
        return octets.decode(codec)
    except UnicodeDecodeError as exc:
        raise TextError(f"not {codec}: {exc.reason} at octet {exc.start}",
                        octets.decode(codec, errors="replace")) from None


def submit_parts(text: str, reference: int, **fields: int | str) -> Iterator[Pdu]:
    """The submit_sm PDUs (without sequence numbers) that carry `text`; `reference`
    ties the parts of a long text together (its low 8 bits are used)."""
    coding, parts = encode_text(text)
    for number, octets in enumerate(parts, start=1):
        esm_class = 0
        if len(parts) > 1:
            octets = gsm.concatenation_header(reference, len(parts), number) + octets
            esm_class = ESM_UDHI
        yield Pdu(Command.SUBMIT_SM, fields={
            **fields, "esm_class": esm_class, "data_coding": coding, "short_message": octets})


@dataclass
class Receipt:
    """A delivery receipt's text (SMPP 3.4 Appendix B): the SMSC's id and the final state."""

    message_id: str
    stat: str
    err: str = ""


_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):(\S*)", re.IGNORECASE)
#: message_state TLV values (SMPP 3.4 5.3.2.35) as the receipt's `stat` would name them.
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                  6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}


def parse_receipt(pdu: Pdu) -> Receipt:
    """The receipt a deliver_sm carries: from its TLVs when the SMSC sets them (they
    are exact), else from the text `id:... sub:... dlvrd:... ... stat:DELIVRD err:...`.
    PduError when it names no message or no state."""
    text = pdu.get_bytes("short_message") or pdu.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    found = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(text.decode("latin-1"))}
    message_id = found.get("id", "")
    if TLV_RECEIPTED_MESSAGE_ID in pdu.tlvs:
        message_id = pdu.tlvs[TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\0").decode("latin-1")
    stat = found.get("stat", "").upper()
    if (state := pdu.tlvs.get(TLV_MESSAGE_STATE)) and state[0] in MESSAGE_STATES:
        stat = MESSAGE_STATES[state[0]]
    if not message_id or not stat:
        raise PduError(f"not a delivery receipt: {text[:100]!r}")
    return Receipt(message_id, stat, found.get("err", ""))


def receipt_text(message_id: str, stat: str, err: str = "000", text: str = "") -> str:
    """A receipt's text as SMSCs write it, for SMSC simulators."""
    return (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:2601011200 done date:2601011201 stat:{stat} err:{err} text:{text[:20]}")
