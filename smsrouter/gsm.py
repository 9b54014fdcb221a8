"""GSM 03.38 (3GPP TS 23.038), the one codec of Kannel's, SMPP's and the modem's texts, and
what a text costs in SMS: GSM-7 (160 characters, 153 per part) or UCS-2 (70, 67 per part).

Gateways bill per segment, and a single non-GSM character (an Amharic letter, an emoji,
a curly quote) switches the whole message to UCS-2, halving what fits.

A GSM-7 text is a list of septets: one per character of the default alphabet, two (an
escape, then the code) for one of its extension table. An SMSC takes them one per octet;
an SMS on the air, and so a modem's PDU, packs them eight to seven octets.

The tables are ours rather than the `gsm0338` package's codec: it has the same
characters, but encodes at half the speed of this dictionary lookup (30 against 17 µs
for a 130-character text here), packs nothing, and reads an unknown escape as U+FFFD
where 23.038 says to show the default alphabet's character.
"""

#: The default alphabet in septet order; 0x1B is the escape to the extension table.
ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
#: The extension table: each character and the septet that follows the escape.
EXTENSION_TABLE = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C,
                   "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
BASIC = set(ALPHABET) - {"\x1b"}
EXTENSION = set(EXTENSION_TABLE)
#: What stands for a septet that is no character, as Python's errors="replace" writes it.
REPLACEMENT = "\ufffd"
_TO_SEPTET = {char: code for code, char in enumerate(ALPHABET) if code != ESCAPE}
_FROM_EXTENSION = {code: char for char, code in EXTENSION_TABLE.items()}

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character fits the GSM default alphabet or its extension."""
    return all(char in BASIC or char in EXTENSION for char in text)


def units(text: str) -> list[bytes]:
    """Each character of a GSM-7 text as its septets: one, or the escape and one.
    KeyError for a character GSM-7 cannot carry (is_gsm7() says so first)."""
    return [bytes([ESCAPE, EXTENSION_TABLE[char]]) if char in EXTENSION_TABLE
            else bytes([_TO_SEPTET[char]]) for char in text]


def decode(septets: bytes) -> tuple[str, list[str]]:
    """Septets, one per octet, as text, and what in them is wrong (empty when nothing is).

    An escape before a code the extension table lacks reads as the default alphabet's
    character, as 23.038 6.2.1.1 tells a phone to show. An octet above 0x7F, or an escape
    that ends the text, reads as U+FFFD and is named among the faults.
    """
    chars, escaped, faults = [], False, []
    for position, octet in enumerate(septets):
        if octet > 0x7F:
            faults.append(f"octet {position} (0x{octet:02X}) is no GSM 03.38 septet")
            chars.append(REPLACEMENT)
            escaped = False
        elif escaped:
            chars.append(_FROM_EXTENSION.get(octet) or ALPHABET[octet].replace("\x1b", " "))
            escaped = False
        elif octet == ESCAPE:
            escaped = True
        else:
            chars.append(ALPHABET[octet])
    if escaped:
        faults.append("the text ends in an escape (0x1B) with no character after it")
        chars.append(REPLACEMENT)
    return "".join(chars), faults


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Septets packed as on the air (23.038 6.1.2.1.1), after `fill_bits` zero bits that
    bring them to a septet boundary behind a user data header."""
    value, width, out = 0, fill_bits, bytearray()
    for septet in septets:
        value |= (septet & 0x7F) << width
        width += 7
        while width >= 8:
            out.append(value & 0xFF)
            value >>= 8
            width -= 8
    if width:
        out.append(value & 0xFF)
    return bytes(out)


def unpack(octets: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first `count` septets packed in `octets`, after `fill_bits`. The count, not the
    octets, says where the text ends: seven septets leave a last octet's top bit unused,
    and an '@' (0x00) that fills it must be kept, not read as padding."""
    value = int.from_bytes(octets, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


def segments(text: str) -> int:
    """The number of SMS the text is sent as; an empty text is still one SMS.

    Parts are filled greedily without splitting an escape pair or a UTF-16 surrogate
    pair, as handsets and SMSCs do.
    """
    if is_gsm7(text):
        costs = [2 if char in EXTENSION else 1 for char in text]
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
        single, part = UCS2_SINGLE, UCS2_PART
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def parts(text: str) -> tuple[bool, list[bytes]]:
    """Whether the text goes as GSM-7, and each SMS part's encoded text without its header:
    septets one per octet, or UTF-16BE. One part when it fits one SMS (160 septets, 140
    octets of UCS-2); otherwise parts of 153 septets or 67 UTF-16 units, as `segments`
    counts them, never splitting an escape or a surrogate pair."""
    if is_gsm7(text):
        return True, _split(units(text), GSM7_SINGLE, GSM7_PART)
    return False, _split([char.encode("utf-16-be") for char in text],
                         UCS2_SINGLE * 2, UCS2_PART * 2)


def concatenation_header(reference: int, total: int, number: int) -> bytes:
    """The user data header of part `number` of `total` (3GPP TS 23.040 9.2.3.24.1): the
    8-bit-reference concatenation element, IEI 0x00 of 3 octets, `reference`'s low byte."""
    return bytes([0x05, 0x00, 0x03, reference & 0xFF, total, number])


def _split(units: list[bytes], single: int, part: int) -> list[bytes]:
    """Encoded units (a character's septets or UTF-16 octets) joined into one SMS's worth,
    or, when they exceed `single` octets, into parts of at most `part`, never splitting a
    unit."""
    whole = b"".join(units)
    if len(whole) <= single:
        return [whole]
    parts, current = [], b""
    for unit in units:
        if len(current) + len(unit) > part:
            parts.append(current)
            current = b""
        current += unit
    return [*parts, current]


def coding(text: str) -> int:
    """Kannel's `coding`: 0 for GSM-7, 2 for UCS-2 (SMPP's data_coding differs: 8 for UCS-2)."""
    return 0 if is_gsm7(text) else 2
