"""Phone numbers in E.164 where a backend knows its country, as the gateway sent them otherwise.

A backend with `default_region` ("TZ", "KE", ...) turns "0754 000 001" into "+255754000001",
so one person is one Connection however the gateway writes their number. Text that is not
a possible phone number (a short code, an email address) is kept as it came.
"""

import phonenumbers


def normalize(identity: str, region: str | None) -> str:
    if not region:
        return identity
    try:
        number = phonenumbers.parse(identity, region.upper())
    except phonenumbers.NumberParseException:
        return identity
    if not phonenumbers.is_possible_number(number):
        return identity
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_region(region: object) -> bool:
    return isinstance(region, str) and region.upper() in phonenumbers.SUPPORTED_REGIONS
