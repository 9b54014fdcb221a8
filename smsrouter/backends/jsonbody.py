"""A webhook's JSON body, read so that whatever a client sends is a 400 naming the body.

Python's json reads what no gateway should send (integers of thousands of digits, which
int() then refuses; nesting deep enough to exhaust the stack), and a body that is JSON but
not an object: each becomes BadInbound("body", ...), never a 500.
"""

import json
from typing import Any

from django.http import HttpRequest

from smsrouter.backends.base import request_body
from smsrouter.exceptions import BadInbound


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body's JSON object. Its values are not trusted: each key that is read is checked
    (NaN or 1e999 elsewhere, which Python's json reads as floats, harm nothing)."""
    try:
        data = json.loads(request_body(request), parse_int=_integer)
    except BadInbound:
        raise
    except RecursionError:
        raise BadInbound("body", "is JSON nested too deeply to read") from None
    except ValueError as exc:  # UnicodeDecodeError too
        raise BadInbound("body", f"is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise BadInbound("body", f"must be a JSON object, not {json_type(data)}")
    return data


def _integer(digits: str) -> int:
    """A JSON integer, as json.loads() reads it; BadInbound for one of more digits than
    Python turns into an int (4,300 by default)."""
    try:
        return int(digits)
    except ValueError:
        raise BadInbound("body", f"has an integer of {len(digits)} digits; "
                         "send long numbers as strings") from None


def json_type(value: Any) -> str:
    """What JSON calls the type of a value json.loads() made."""
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null"
