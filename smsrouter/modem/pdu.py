"""SMS TPDUs as a modem gives and takes them in PDU mode (3GPP TS 23.040), in hex, with the
service centre's address in front (24.011's RP-SC address, as 27.005 3.1 puts it).

Received: SMS-DELIVER (an SMS from a phone) and SMS-STATUS-REPORT (a send's fate). Sent:
SMS-SUBMIT, GSM-7 when the text fits the default alphabet and its extension table, else
UCS-2, a long text split into parts behind a concatenation header. The simulated modem of
the tests decodes submits and encodes the other two, so every shape is here both ways.

GSM-7 is smsrouter.gsm's codec, shared with Kannel and SMPP. What the library the issue
names got wrong is right here on purpose: the text after a 16-bit-reference header starts
at its fill bits, a last '@' is kept because the septet count says where the text ends,
'§' is septet 0x5F, and an emoji is a UTF-16 surrogate pair.

Malformed input raises PduError naming what is wrong, never IndexError or ValueError from
deep inside, since a PDU comes from the modem and the network, not from us.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from smsrouter import gsm

#: TP-MTI, the low two bits of the first octet, per direction.
DELIVER, SUBMIT, STATUS_REPORT = 0, 1, 2
#: Type of address: international (E.164) numbers, others, alphanumeric senders.
INTERNATIONAL, UNKNOWN, ALPHANUMERIC = 0x91, 0x81, 0xD0
#: Concatenation information elements: 8-bit and 16-bit references.
CONCAT_8, CONCAT_16 = 0x00, 0x08
#: TP-VP for a relative validity period of one week (23.040 9.2.3.12.1: 7 days = 0xAD).
ONE_WEEK = 0xAD
#: Alphabets of TP-DCS.
GSM7, EIGHT_BIT, UCS2 = 0, 1, 2
_SEMI_OCTETS = "0123456789*#abc"


class PduError(ValueError):
    """A PDU that cannot be read or a text that cannot be sent; the message says why."""


@dataclass(frozen=True)
class Concat:
    """A part's place in a long SMS: the sender's reference, the part count, its number."""

    reference: int
    total: int
    seqnum: int


@dataclass(frozen=True)
class Deliver:
    """An SMS-DELIVER: an SMS a phone sent."""

    sender: str
    timestamp: datetime  # the service centre's, with its time zone
    text: str
    concat: Concat | None
    pdu: str  # the hex as the modem gave it


@dataclass(frozen=True)
class Submit:
    """An SMS-SUBMIT, as the modem would send it on."""

    recipient: str
    text: str
    concat: Concat | None
    reference: int  # TP-MR
    status_report: bool


@dataclass(frozen=True)
class StatusReport:
    """An SMS-STATUS-REPORT: what became of the SMS the modem sent as TP-MR `reference`."""

    reference: int
    recipient: str
    status: int  # TP-ST
    discharged: datetime

    @property
    def state(self) -> str:
        """TP-ST's class (23.040 9.2.3.15): "delivered" for 0x00-0x1F, "pending" while
        the service centre still tries (0x20-0x3F), "failed" once it gave up."""
        if self.status < 0x20:
            return "delivered"
        return "pending" if self.status < 0x40 else "failed"


@dataclass(frozen=True)
class SubmitPdu:
    """One SMS-SUBMIT to hand to AT+CMGS: its hex, and the TPDU's length in octets, which
    leaves out the service centre's address."""

    hex: str
    length: int


# Reading.
class _Reader:
    """The octets of a PDU, read in order; PduError naming the field that runs short."""

    def __init__(self, octets: bytes) -> None:
        self.octets, self.at = octets, 0

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.at + count > len(self.octets):
            raise PduError(f"the PDU ends inside {what} (octet {self.at} of {len(self.octets)})")
        chunk = self.octets[self.at:self.at + count]
        self.at += count
        return chunk

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def rest(self) -> bytes:
        chunk, self.at = self.octets[self.at:], len(self.octets)
        return chunk


def decode(hex_pdu: str) -> Deliver | Submit | StatusReport:
    """The TPDU behind a modem's hex, by its TP-MTI; PduError when it is none of the three
    or cannot be read."""
    try:
        octets = bytes.fromhex(hex_pdu.strip())
    except ValueError:
        raise PduError(f"the PDU is not hex: {hex_pdu[:40]!r}") from None
    reader = _Reader(octets)
    reader.take(reader.octet("the service centre's address length"),
                "the service centre's address")
    first = reader.octet("the first octet")
    kind = first & 0x03
    if kind == DELIVER:
        return _deliver(reader, first, hex_pdu.strip())
    if kind == SUBMIT:
        return _submit(reader, first)
    if kind == STATUS_REPORT:
        return _status_report(reader)
    raise PduError("TP-MTI 3 is reserved: the PDU is no SMS")


def _deliver(reader: _Reader, first: int, hex_pdu: str) -> Deliver:
    sender = _address(reader, "the sender's address")
    reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    timestamp = _timestamp(reader.take(7, "the service centre's timestamp"))
    text, concat = _user_data(reader, dcs, bool(first & 0x40))
    return Deliver(sender, timestamp, text, concat, hex_pdu)


def _submit(reader: _Reader, first: int) -> Submit:
    reference = reader.octet("TP-MR")
    recipient = _address(reader, "the recipient's address")
    reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    validity = (first >> 3) & 0x03
    reader.take({0: 0, 2: 1}.get(validity, 7), "TP-VP")
    text, concat = _user_data(reader, dcs, bool(first & 0x40))
    return Submit(recipient, text, concat, reference, bool(first & 0x20))


def _status_report(reader: _Reader) -> StatusReport:
    reference = reader.octet("TP-MR")
    recipient = _address(reader, "the recipient's address")
    reader.take(7, "the service centre's timestamp")
    discharged = _timestamp(reader.take(7, "the discharge time"))
    return StatusReport(reference, recipient, reader.octet("TP-ST"), discharged)


def _address(reader: _Reader, what: str) -> str:
    """A TP-OA/DA/RA: its length in semi-octets, its type, its digits or GSM-7 letters."""
    digits = reader.octet(f"{what}'s length")
    kind = reader.octet(f"{what}'s type")
    value = reader.take((digits + 1) // 2, what)
    if kind & 0x70 == ALPHANUMERIC & 0x70:
        text, _ = gsm.decode(gsm.unpack(value, digits * 4 // 7))
        return text
    number = "".join(_SEMI_OCTETS[n] if n < 15 else "" for octet in value
                     for n in (octet & 0x0F, octet >> 4))[:digits]
    return "+" + number if kind & 0x70 == INTERNATIONAL & 0x70 else number


def _timestamp(octets: bytes) -> datetime:
    """TP-SCTS: seven swapped-BCD octets, the last a zone in quarter hours with a sign bit."""
    fields = [(octet & 0x0F) * 10 + (octet >> 4) for octet in octets[:6]]
    zone = octets[6]
    quarters = (zone & 0x07) * 10 + (zone >> 4)
    offset = timedelta(minutes=15 * quarters) * (-1 if zone & 0x08 else 1)
    year, month, day, hour, minute, second = fields
    try:  # two digits of year: 80-99 are the last century's, as in 23.040's own examples
        return datetime(year + (1900 if year >= 80 else 2000), month, day, hour, minute, second,
                        tzinfo=timezone(offset))
    except ValueError as exc:
        raise PduError(f"the timestamp {octets.hex().upper()} is no date: {exc}") from None


def _alphabet(dcs: int) -> int:
    """TP-DCS's alphabet (23.038 4): GSM-7, 8-bit data or UCS-2."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding, with or without automatic deletion
        if dcs & 0x20:
            raise PduError(f"TP-DCS 0x{dcs:02X} says the text is compressed, which no "
                           "phone sends and this bridge cannot read")
        alphabet = (dcs >> 2) & 0x03
        if alphabet == 3:
            raise PduError(f"TP-DCS 0x{dcs:02X} names a reserved alphabet")
        return alphabet
    if group == 0xF:
        return EIGHT_BIT if dcs & 0x04 else GSM7
    return UCS2 if group == 0xE else GSM7  # message waiting groups: 0xC, 0xD are GSM-7


def _user_data(reader: _Reader, dcs: int, has_header: bool) -> tuple[str, Concat | None]:
    alphabet = _alphabet(dcs)
    length = reader.octet("TP-UDL")
    data = reader.rest()
    header_octets, concat = 0, None
    if has_header:
        if not data:
            raise PduError("TP-UDHI is set but the user data is empty")
        header_octets = 1 + data[0]
        if header_octets > len(data):
            raise PduError(f"the user data header claims {data[0]} octets, "
                           f"{len(data) - 1} follow")
        concat = _concatenation(data[1:header_octets])
    if alphabet == GSM7:
        header_septets = (header_octets * 8 + 6) // 7
        count = length - header_septets
        if count < 0 or (length * 7 + 7) // 8 > len(data):
            raise PduError(f"TP-UDL says {length} septets, the PDU holds "
                           f"{len(data) * 8 // 7}")
        fill = header_septets * 7 - header_octets * 8
        septets = gsm.unpack(data[header_octets:], count, fill)
        text, _ = gsm.decode(septets)
        return text, concat
    if length > len(data):
        raise PduError(f"TP-UDL says {length} octets, the PDU holds {len(data)}")
    body = data[header_octets:length]
    if alphabet == EIGHT_BIT:
        return body.decode("latin-1"), concat
    return body.decode("utf-16-be", errors="replace"), concat


def _concatenation(elements: bytes) -> Concat | None:
    """The concatenation element among a header's elements, 8- or 16-bit reference."""
    at = 0
    while at + 2 <= len(elements):
        iei, size = elements[at], elements[at + 1]
        value = elements[at + 2:at + 2 + size]
        if len(value) < size:
            raise PduError(f"header element 0x{iei:02X} runs past the header")
        if (iei, size) in ((CONCAT_8, 3), (CONCAT_16, 4)):
            reference = int.from_bytes(value[:-2], "big")
            total, seqnum = value[-2], value[-1]
            if not 1 <= seqnum <= total:
                raise PduError(f"concatenation part {seqnum} of {total}")
            return Concat(reference, total, seqnum)
        at += 2 + size
    return None


# Writing.
def encode_submit(recipient: str, text: str, *, concat_reference: int,
                  status_report: bool = True) -> list[SubmitPdu]:
    """The SMS-SUBMITs that send `text` to `recipient`: one, or a part each (8-bit
    concatenation reference `concat_reference`), each asking for a status report."""
    address = _encode_address(recipient, "recipient")
    alphabet, parts = _text_parts(text)
    first = SUBMIT | 0x10 | (0x20 if status_report else 0)  # TP-VPF relative
    pdus = []
    for number, body in enumerate(parts, start=1):
        header = b""
        if len(parts) > 1:
            header = gsm.concatenation_header(concat_reference, len(parts), number)
        user_data, length = _encode_user_data(alphabet, header, body)
        tpdu = bytes([first | (0x40 if header else 0), 0]) + address + bytes(
            [0, 0x08 if alphabet == UCS2 else 0x00, ONE_WEEK, length]) + user_data
        pdus.append(SubmitPdu("00" + tpdu.hex().upper(), len(tpdu)))
    return pdus


def encode_deliver(sender: str, text: str, timestamp: datetime, *, concat_reference: int = 0,
                   sixteen_bit: bool = False) -> list[str]:
    """The SMS-DELIVERs a modem would give for `text` from `sender`, with a service
    centre's address in front: what the simulated modem stores on its SIM."""
    address = _encode_address(sender, "sender", letters=True)
    alphabet, parts = _text_parts(text)
    pdus = []
    for number, body in enumerate(parts, start=1):
        header = b""
        if len(parts) > 1 and sixteen_bit:
            header = (bytes([6, CONCAT_16, 4]) + (concat_reference & 0xFFFF).to_bytes(2, "big")
                      + bytes([len(parts), number]))
        elif len(parts) > 1:
            header = gsm.concatenation_header(concat_reference, len(parts), number)
        user_data, length = _encode_user_data(alphabet, header, body)
        tpdu = bytes([DELIVER | 0x04 | (0x40 if header else 0)]) + address + bytes(
            [0, 0x08 if alphabet == UCS2 else 0x00]) + _encode_timestamp(timestamp) + bytes(
            [length]) + user_data
        pdus.append(SERVICE_CENTRE + tpdu.hex().upper())
    return pdus


def encode_status_report(reference: int, recipient: str, status: int, when: datetime) -> str:
    """The SMS-STATUS-REPORT a modem would give for the SMS it sent as TP-MR `reference`."""
    stamp = _encode_timestamp(when)
    tpdu = bytes([STATUS_REPORT, reference & 0xFF]) + _encode_address(
        recipient, "recipient") + stamp + stamp + bytes([status])
    return SERVICE_CENTRE + tpdu.hex().upper()


#: A service centre's address for the PDUs this module makes up: +255 700 000 000.
SERVICE_CENTRE = "0791527500000000"


def _encode_address(number: str, what: str, letters: bool = False) -> bytes:
    """A TP-OA/DA/RA for `number`; with `letters`, a name such as "Clinic" (what a sender
    may be, never a recipient) goes as an alphanumeric address of up to 11 GSM-7 letters."""
    digits = number.removeprefix("+")
    if letters and number and not (digits.isascii() and digits.isdigit()) and gsm.is_gsm7(number):
        septets = b"".join(gsm.units(number))
        if len(septets) > 11:
            raise PduError(f"the {what} {number[:40]!r} has more than 11 letters")
        packed = gsm.pack(septets)
        return bytes([(len(septets) * 7 + 3) // 4, ALPHANUMERIC]) + packed
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 20:
        raise PduError(f"the {what} {number[:40]!r} is not a phone number")
    padded = digits + "F" * (len(digits) % 2)
    swapped = bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))
    kind = INTERNATIONAL if number.startswith("+") else UNKNOWN
    return bytes([len(digits), kind]) + swapped


def _encode_timestamp(when: datetime) -> bytes:
    offset = when.utcoffset() or timedelta(0)
    quarters = int(abs(offset.total_seconds()) // 900)
    values = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    octets = [(value % 10) << 4 | value // 10 for value in values]
    zone = (quarters % 10) << 4 | quarters // 10 | (0x08 if offset < timedelta(0) else 0)
    return bytes([*octets, zone])


def _text_parts(text: str) -> tuple[int, list[bytes]]:
    """The alphabet and each part's encoded text, as smsrouter.gsm.parts() splits it; a
    concatenated SMS has 255 parts at most."""
    gsm7, parts = gsm.parts(text)
    if len(parts) > 255:
        raise PduError(f"the text needs {len(parts)} parts; a concatenated SMS has 255 at most")
    return (GSM7 if gsm7 else UCS2), parts


def _encode_user_data(alphabet: int, header: bytes, body: bytes) -> tuple[bytes, int]:
    """The user data (header, then the text) and TP-UDL: septets for GSM-7, else octets."""
    if alphabet != GSM7:
        return header + body, len(header) + len(body)
    header_septets = (len(header) * 8 + 6) // 7
    fill = header_septets * 7 - len(header) * 8
    # TP-UDL counts septets, the header's rounded up: the fill bits are part of its count.
    return header + gsm.pack(body, fill), header_septets + len(body)
