"""What a stored message may hold, decided once, before anything is written.

SQLite stores nearly anything; PostgreSQL refuses a NUL character in any text, enforces
`max_length`, and its jsonb refuses NaN, `\\u0000` and lone surrogates. A message that one
database stores and another refuses half-way through a batch is lost on the database
that deployments use, and the gateway retries it for ever. So every value is judged here,
by the same rules on every database, at every entry point (`incoming()` and so every
webhook, `send()` and the replies the outbox stores):

* identity: a non-empty string of at most Connection.identity's max_length characters,
  without NUL or lone surrogates (U+D800 to U+DFFF alone, which no UTF-8 database can
  encode). Refused otherwise.
* external id: None, or a string of at most Message.external_id's max_length characters,
  without those characters. Refused otherwise.
* fields: a dict that every database's JSON column holds and gives back equal: string
  keys, strings without NUL or lone surrogates (refused rather than altered, since fields
  are data that apps match on, and a gateway that puts NUL in metadata sent a malformed
  request),
  finite floats under 1e16 (PostgreSQL gives larger ones back as other integers), integers
  that JSON can write, nesting at most MAX_DEPTH deep, and only what DjangoJSONEncoder
  can encode. Refused otherwise, naming the key.
* text: never refused, since it is what the person sent: each NUL or lone surrogate is
  replaced by U+FFFD in `text`, and the exact original is kept in
  `fields["original_text"]`: a list whose strings are the runs of the text that were
  stored as they are, and whose integers are the code points that were replaced, in
  order. `original_text(fields)` joins it back: "a\\x00b" is stored as "a\\ufffdb" with
  ["a", 0, "b"], which every JSON column holds and every language can read.

Refusals of inbound values raise BadInbound (a ValueError too), which webhooks answer
with a 400 naming the field; outgoing ones a ValueError naming it.
"""

import math
import re
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.backends.base.operations import BaseDatabaseOperations

from smsrouter import gsm
from smsrouter.exceptions import BadInbound
from smsrouter.models import Connection, Message

IDENTITY_LENGTH: int = Connection._meta.get_field("identity").max_length
EXTERNAL_ID_LENGTH: int = Message._meta.get_field("external_id").max_length
#: The most a segment count can be: Message.segments is a small integer on every database.
MAX_SEGMENTS: int = BaseDatabaseOperations.integer_field_ranges[
    Message._meta.get_field("segments").get_internal_type()][1]
#: How deep fields may nest: more than any annotation needs, and far within SQLite's JSON
#: depth limit (1,000 or 2,000 by version) and Python's recursion limit.
MAX_DEPTH = 100
#: Floats from here up come back from PostgreSQL's jsonb as integers of another value.
MAX_FLOAT = 1e16
#: Where a text's exact original goes when it had to be changed to be stored.
ORIGINAL_TEXT = "original_text"
REPLACEMENT = "\ufffd"

#: What no database stores as text: NUL (PostgreSQL) and lone surrogates (any UTF-8 one).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_encoder = DjangoJSONEncoder()


def inbound(
    identity: Any,
    text: Any,
    external_id: Any,
    fields: Any,
    *,
    normalize: Callable[[str], str] = str,
) -> tuple[str, str, str | None, dict[str, Any]]:
    """The values of an inbound message as they will be stored; BadInbound naming the
    first that cannot be. `normalize` turns the identity into the one stored (E.164)."""
    if not isinstance(identity, str):
        raise BadInbound("identity", f"must be a string, not {type(identity).__name__}")
    identity = normalize(identity)
    if problem := identity_problem(identity):
        raise BadInbound("identity", problem)
    if not isinstance(text, str):
        raise BadInbound("text", f"must be a string, not {type(text).__name__}")
    if problem := external_id_problem(external_id):
        raise BadInbound("external_id", problem)
    if fields is None:
        fields = {}
    if fault := fields_fault(fields):
        raise BadInbound(*fault)
    text, fields = with_original(text, fields)
    return identity, text, external_id, fields


def outgoing_text(text: Any) -> tuple[str, dict[str, Any]]:
    """An outgoing text as it will be stored and sent, and its message's fields (the
    original, if it had to be changed); ValueError if it is not a string."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}.")
    return with_original(text, {})


def with_original(text: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The text with each character no database stores replaced by U+FFFD, and the fields
    with the original under ORIGINAL_TEXT when anything was replaced (a new dict then)."""
    if UNSTORABLE.search(text) is None:
        return text, fields
    parts: list[str | int] = []
    start = 0
    for found in UNSTORABLE.finditer(text):
        if found.start() > start:
            parts.append(text[start:found.start()])
        parts.append(ord(found.group()))
        start = found.end()
    if start < len(text):
        parts.append(text[start:])
    return UNSTORABLE.sub(REPLACEMENT, text), {**fields, ORIGINAL_TEXT: parts}


def original_text(fields: dict[str, Any]) -> str | None:
    """The exact text a message arrived with, if it had to be changed to be stored."""
    parts = fields.get(ORIGINAL_TEXT)
    if parts is None:
        return None
    return "".join(part if isinstance(part, str) else chr(part) for part in parts)


def scrubbed(text: str) -> str:
    """A diagnostic text (an error, a gateway's answer) made storable: each NUL or lone
    surrogate replaced by U+FFFD. For text whose exact form nobody needs back."""
    return UNSTORABLE.sub(REPLACEMENT, text)


def segments(text: str) -> int:
    """gsm.segments(), at most MAX_SEGMENTS: a text long enough to pass it (2 MB of
    UCS-2) is far beyond the 255 parts any SMS can have, and must still be stored."""
    return min(gsm.segments(text), MAX_SEGMENTS)


def identity_problem(identity: str) -> str | None:
    """Why this identity cannot be stored, or None; the words follow the field's name."""
    if not identity:
        return "must not be empty"
    if len(identity) > IDENTITY_LENGTH:
        return (f"is {len(identity)} characters long; at most {IDENTITY_LENGTH} can be "
                "stored (Connection.identity)")
    return _characters_problem(identity)


def external_id_problem(external_id: Any) -> str | None:
    """Why this gateway id cannot be stored or looked up, or None (for None too)."""
    if external_id is None:
        return None
    if not isinstance(external_id, str):
        return f"must be a string or None, not {type(external_id).__name__}"
    if len(external_id) > EXTERNAL_ID_LENGTH:
        return (f"is {len(external_id)} characters long; at most {EXTERNAL_ID_LENGTH} can "
                "be stored (Message.external_id)")
    return _characters_problem(external_id)


def fields_problem(fields: Any) -> str | None:
    """Why these fields cannot be stored as JSON alike on every database, or None."""
    fault = fields_fault(fields)
    return None if fault is None else " ".join(fault)


def fields_fault(fields: Any) -> tuple[str, str] | None:
    """Where in these fields the first value that cannot be stored is ("fields['to']"),
    and why; None if they can be."""
    if not isinstance(fields, dict):
        return "fields", f"must be a dict, not {type(fields).__name__}"
    return _value_fault(fields, "fields", 1)


def _characters_problem(value: str) -> str | None:
    if (found := UNSTORABLE.search(value)) is None:
        return None
    what = "NUL" if found.group() == "\x00" else "a lone surrogate"
    return (f"contains {what} (U+{ord(found.group()):04X}) at position {found.start()}, "
            "which no database can store")


def _value_fault(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    """Where and why `value`, at `path` in the fields, would not round-trip through every
    database's JSON column; the checks follow what json.dumps(cls=DjangoJSONEncoder) writes."""
    if isinstance(value, str):
        problem = _characters_problem(value)
        return (_shown(path), problem) if problem else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            int.__repr__(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            return _shown(path), "is an integer too long for JSON; store it as a string"
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return _shown(path), f"is {value!r}, which JSON cannot hold"
        if abs(value) >= MAX_FLOAT:
            return _shown(path), (f"is the float {value!r}: PostgreSQL gives floats from "
                                  f"{MAX_FLOAT:g} up back as other numbers; store it as a "
                                  "string or an int")
        return None
    if depth > MAX_DEPTH:
        return _shown(path), f"is nested more than {MAX_DEPTH} deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):  # json.dumps() would make 1 "1": not given back
                return _shown(path), (f"has a key of type {type(key).__name__}; "
                                      "JSON keys are strings")
            if problem := _characters_problem(key):
                return _shown(path), f"has a key that {problem}"
            if fault := _value_fault(item, f"{path}[{key!r:.40}]", depth + 1):
                return fault
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if fault := _value_fault(item, f"{path}[{index}]", depth + 1):
                return fault
        return None
    try:
        encoded = _encoder.default(value)
    except TypeError:
        return _shown(path), f"({type(value).__name__}) is not JSON-serializable"
    return _value_fault(encoded, path, depth)


def _shown(path: str) -> str:
    """A path short enough for an error message."""
    return path if len(path) <= 80 else f"{path[:60]}...{path[-17:]}"
