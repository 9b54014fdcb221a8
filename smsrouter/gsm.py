"""How many SMS a text costs: GSM-7 (160 characters, 153 per part) or UCS-2 (70, 67 per part).

Gateways bill per segment, and a single non-GSM character (an Amharic letter, an emoji,
a curly quote) switches the whole message to UCS-2, halving what fits.
"""

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one).
BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = set("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character fits the GSM default alphabet or its extension."""
    return all(char in BASIC or char in EXTENSION for char in text)


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


def coding(text: str) -> int:
    """Kannel's `coding`: 0 for GSM-7, 2 for UCS-2 (SMPP's data_coding differs: 8 for UCS-2)."""
    return 0 if is_gsm7(text) else 2

