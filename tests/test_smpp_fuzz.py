"""Property-based tests of the SMPP codec and link: whatever an SMSC sends, a value or a PduError.

An SMSC sends again whatever it was refused, so one exception the decoder lets escape (an
IndexError from a truncated UDH did) means the same PDU for ever. The only outcomes allowed
here are a decoded value or the codec's own refusal (PduError, or its UdhError and
TextError), and a refusal whose header was sound carries the PDU as far as it reads. Over
loopback, any framed PDUs get their answers and the bind stays up; through the backend and
the database, a deliver_sm is stored once, refused with nothing stored, or awaits its parts.
HYPOTHESIS_PROFILE=deep runs each with thousands of examples.
"""

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from smsrouter import gsm
from smsrouter.backends import backends
from smsrouter.backends.smpp import SmppBackend, _read_part
from smsrouter.models import Message
from smsrouter.smpp import pdu
from smsrouter.smpp.client import Link
from smsrouter.smpp.pdu import Command, Pdu, PduError
from tests.smsc import FakeSmsc, with_length

TIMEOUT = 10
KNOWN = set(Command._value2member_map_)
#: The SMSC's unbind rightly ends the session, so the link's tests send every other command.
SESSION = tuple(command for command in Command if command != Command.UNBIND)

octet = st.integers(0, 255)
tlvs = st.dictionaries(
    st.sampled_from([pdu.TLV_RECEIPTED_MESSAGE_ID, pdu.TLV_MESSAGE_STATE, pdu.TLV_MESSAGE_PAYLOAD,
                     0x0204, 0x020C, 0x1400]) | st.integers(0, 0xFFFF),
    st.binary(max_size=40), max_size=3)


@st.composite
def user_data(draw: st.DrawFn) -> bytes:
    """A short_message with a UDH: concatenation and other elements, lengths that may lie."""
    elements = draw(st.lists(st.one_of(
        st.tuples(st.just(0x00), st.tuples(octet, octet, octet).map(bytes)),
        st.tuples(st.just(0x08), st.tuples(octet, octet, octet, octet).map(bytes)),
        st.tuples(octet, st.binary(max_size=6))), max_size=3))
    header = b"".join(bytes([iei, len(value) + draw(st.sampled_from([0, 0, 0, -1, 1, 5])) & 0xFF])
                      + value for iei, value in elements)
    length = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1, 40])) & 0xFF
    return bytes([length]) + header + draw(st.binary(max_size=40))


#: Octets, a UDH and text, or UTF-16: at most 140 octets, as an SMS holds.
short_message = st.binary(max_size=140) | user_data() | st.text(max_size=70).map(
    lambda text: text.encode("utf-16-be"))


@st.composite
def valid_pdus(draw: st.DrawFn, commands: Sequence[Command] = tuple(Command)) -> Pdu:
    """A PDU that encodes: one of `commands`, its fields drawn within SMPP's sizes."""
    command = draw(st.sampled_from(commands))
    fields: dict[str, int | str | bytes] = {}
    for name, kind, size in pdu.LAYOUTS.get(command, ()):
        if kind == "c":
            fields[name] = draw(st.text(st.characters(min_codepoint=1, max_codepoint=127),
                                        max_size=size - 1))
        elif kind == "B":
            fields[name] = draw(octet)
        else:
            fields[name] = draw(short_message)
    if command == Command.DELIVER_SM:
        fields["esm_class"] = draw(
            st.sampled_from([0, pdu.ESM_UDHI, pdu.ESM_RECEIPT, 0x44]) | octet)
        fields["data_coding"] = draw(st.sampled_from([0, 1, 3, 8]) | octet)
    return Pdu(command, draw(st.integers(0, 0x7FFFFFFF)), draw(st.sampled_from([0, 0x58]) | octet),
               fields, draw(tlvs))


@st.composite
def mutated(draw: st.DrawFn, framed: bool, commands: Sequence[Command] = tuple(Command)) -> bytes:
    """A valid PDU's octets, truncated, cut into, extended or with octets overwritten (its
    lengths among them); `framed` pads them to a header's 16 octets if need be and sets
    command_length right again afterwards."""
    data = bytearray(draw(valid_pdus(commands)).encode())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            data[at:at + 1] = bytes([draw(octet)])
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return with_length(bytes(data).ljust(pdu.HEADER_SIZE, b"\0")) if framed else bytes(data)


def header_and_body(commands: Sequence[Command]) -> st.SearchStrategy[bytes]:
    """A sound header (one of `commands`, or any command_id) and any body."""
    return st.builds(
        lambda command, status, sequence, body: with_length(
            pdu.HEADER.pack(0, command, status, sequence) + body),
        st.sampled_from(commands) | st.integers(0x80000016, 0xFFFFFFFF), octet,
        st.integers(0, 0xFFFFFFFF), st.binary(max_size=200))


#: deliver_sm PDUs whose header is sound: any sender, esm_class, data_coding and text, and
#: optional parameters that may run past the end.
deliver_bodies = st.builds(
    lambda source, ton, esm_class, coding, octets, tail: with_length(Pdu(
        Command.DELIVER_SM, 900, fields={
            "source_addr": source, "source_addr_ton": ton, "esm_class": esm_class,
            "data_coding": coding, "short_message": octets}).encode() + tail),
    st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=20)
    | st.just("255700000001"), st.sampled_from([0, 1]),
    st.sampled_from([0, pdu.ESM_UDHI, pdu.ESM_RECEIPT]), st.sampled_from([0, 1, 3, 8]) | octet,
    short_message, st.sampled_from([b"", b"\x04\x24\x00\x09abc", b"\x00"]))


def as_deliver_sm(data: bytes) -> bytes:
    """The octets with the command_id of a deliver_sm again, whatever a mutation did to it."""
    return data[:4] + Command.DELIVER_SM.to_bytes(4, "big") + data[8:]


any_octets = st.one_of(st.binary(max_size=300), header_and_body(tuple(Command)),
                       mutated(framed=False), mutated(framed=True), valid_pdus().map(Pdu.encode))


def decoded_or_refused(data: bytes) -> Pdu | None:
    """Pdu.decode's outcome, checked: the PDU, the PDU as far as it reads (whenever its
    header is sound), or None for a refusal with nothing to read. The outcome is a
    Hypothesis event: --hypothesis-show-statistics counts them."""
    sound = (len(data) >= pdu.HEADER_SIZE and int.from_bytes(data[:4], "big") == len(data)
             and int.from_bytes(data[4:8], "big") in KNOWN)
    try:
        decoded = Pdu.decode(data)
    except PduError as exc:
        assert (exc.partial is not None) == sound, exc
        if exc.partial is None:
            event("decoded: header refused")
            return None
        assert exc.partial.problems and exc.partial.raw == data
        event("decoded: body read in part")
        return exc.partial
    assert sound and decoded.problems == [] and decoded.raw == data
    event("decoded: whole")
    return decoded


@given(any_octets)
@example(Pdu(Command.DELIVER_SM, fields={  # the truncated UDH that once wedged the link
    "esm_class": pdu.ESM_UDHI, "short_message": b"\x03\x00\x03\x07hi"}).encode())
def test_any_octets_decode_to_a_pdu_or_a_pdu_error(data):
    """And the whole reading of a deliver_sm (UDH, text, receipt) ends in a text or a refusal."""
    decoded = decoded_or_refused(data)
    if decoded is None or decoded.command_id != Command.DELIVER_SM:
        return
    concat, part = _read_part(decoded)
    assert isinstance(part.text, str) and all(isinstance(p, str) for p in part.problems)
    assert concat is None or 1 <= concat[2] <= concat[1]
    try:
        receipt = pdu.parse_receipt(decoded)
    except PduError:
        return
    assert receipt.message_id and receipt.stat


@given(valid_pdus())
def test_a_valid_pdu_round_trips(message):
    encoded = message.encode()
    decoded = Pdu.decode(encoded)
    assert decoded.encode() == encoded
    assert {name: value for name, value in decoded.fields.items()
            if name in message.fields} == message.fields and decoded.tlvs == message.tlvs


@given(st.binary(max_size=300) | user_data())
def test_split_udh_gives_the_payload_or_a_udh_error(octets):
    try:
        concat, payload = pdu.split_udh(octets)
    except pdu.UdhError as exc:
        assert octets.endswith(exc.payload)
        return
    assert payload == octets[1 + octets[0]:]
    assert concat is None or 1 <= concat[2] <= concat[1]


@given(short_message, st.sampled_from([0, 1, 3, 8]) | octet)
def test_decode_text_gives_a_text_or_a_text_error_with_its_best_reading(octets, coding):
    try:
        text = pdu.decode_text(octets, coding)
    except pdu.TextError as exc:
        assert gsm.REPLACEMENT in exc.text or coding not in (0, 1, 3, 8)
        text = exc.text
    assert isinstance(text, str)


@given(st.text(max_size=500))
def test_any_text_goes_out_in_parts_that_read_back_as_it(text):
    parts = list(pdu.submit_parts(text, 7))
    read = []
    for part in parts:
        octets = part.get_bytes("short_message")
        if len(parts) > 1:
            concat, octets = pdu.split_udh(octets)
            assert concat is not None and concat[1] == len(parts)
        read.append(pdu.decode_text(octets, part.get_int("data_coding")))
    assert "".join(read) == text


# Over loopback: the link, with no database behind it.
def answer_to(frame: bytes) -> int | None:
    """The command_id the link answers a framed PDU with; None for a response."""
    length, command_id = pdu.HEADER.unpack_from(frame)[:2]
    if length < pdu.HEADER_SIZE or command_id not in KNOWN:
        return Command.GENERIC_NACK
    if command_id & pdu.RESPONSE_BIT:
        return None
    return {Command.ENQUIRE_LINK: Command.ENQUIRE_LINK_RESP,
            Command.DELIVER_SM: Command.DELIVER_SM_RESP}.get(command_id, Command.GENERIC_NACK)


short_header = st.builds(lambda length, command, sequence: pdu.HEADER.pack(
    length, command, 0, sequence), st.integers(0, pdu.HEADER_SIZE - 1),
    st.sampled_from(SESSION), st.integers(0, 0x7FFFFFFF))
# Framed as command_length says, or a header whose command_length is below its own 16 octets.
frames = st.lists(st.one_of(
    deliver_bodies, mutated(framed=True, commands=[Command.DELIVER_SM]).map(as_deliver_sm),
    mutated(framed=True, commands=SESSION),
    header_and_body(SESSION), short_header,
).filter(lambda frame: frame[4:8] != Command.UNBIND.to_bytes(4, "big")), min_size=1, max_size=5)


async def exchange(smsc: FakeSmsc, sent: list[bytes]) -> tuple[Counter, list[Pdu], list[str]]:
    """Bind a link, send the frames, then an enquire_link: the answers, once all are in; the
    deliver_sm PDUs the link handed on; the link's states."""
    delivered: list[Pdu] = []
    states: list[str] = []

    async def on_deliver(deliver: Pdu) -> int:
        delivered.append(deliver)
        return pdu.ESME_ROK

    link = Link("127.0.0.1", smsc.port, Command.BIND_TRANSCEIVER,
                {"system_id": "smsrouter", "password": "secret", "interface_version": 0x34},
                enquire_link=3600, reconnect_backoff=0.05, on_deliver=on_deliver,
                on_state=lambda state, detail: states.append(state))
    link.start()
    try:
        await asyncio.wait_for(smsc.binds.get(), TIMEOUT)
        for frame in sent:
            smsc.raw(frame)
        smsc.enquire_link(0x7FFFFFFF)
        expected = Counter(answer for frame in sent if (answer := answer_to(frame)))
        expected[Command.ENQUIRE_LINK_RESP] += 1
        answers: Counter = Counter()
        async with asyncio.timeout(TIMEOUT):
            while answers != expected:
                answers[(await smsc.answers.get()).command_id] += 1
        return answers, delivered, states
    finally:
        await link.stop()


@given(frames)
def test_the_link_answers_any_framed_pdus_and_stays_bound(sent):
    async def run() -> tuple[Counter, list[Pdu], list[str]]:
        smsc = FakeSmsc()
        await smsc.start()
        try:
            return await exchange(smsc, sent)
        finally:
            await smsc.close()

    answers, delivered, states = asyncio.run(run())
    for command_id in answers:
        event(f"answered with {Command(command_id).name.lower()}")
    assert states == ["bound", "unbound"]
    assert len(delivered) == sum(answer_to(f) == Command.DELIVER_SM_RESP for f in sent)


# Through the backend and the database.
count_in = sync_to_async(lambda: Message.objects.filter(direction="in").count())


@pytest.fixture
def smpp_backend(settings):
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.INSTALLED_BACKENDS = {"smpp": {
        "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1", "port": 2775}}
    instance = backends["smpp"]
    assert isinstance(instance, SmppBackend)
    return instance


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=deliver_bodies | mutated(framed=True, commands=[Command.DELIVER_SM]).map(as_deliver_sm))
async def test_a_deliver_sm_is_stored_once_or_refused_with_nothing_stored(smpp_backend, async_db,
                                                                          data):
    """As the link hands it on: ESME_ROK with one message stored (none for a receipt or a
    part still awaiting the others), or ESME_RX_R_APPN with none; it never raises, which
    would be answered ESME_RX_T_APPN and delivered again."""
    deliver = decoded_or_refused(data)
    assert deliver is not None
    before = await count_in()
    status = await smpp_backend._on_deliver(deliver)
    added = await count_in() - before
    concat, _ = _read_part(deliver)
    event(f"{pdu.status_name(status)}, {added} stored")
    if deliver.get_int("esm_class") & pdu.ESM_RECEIPT:
        assert (status, added) == (pdu.ESME_ROK, 0)
    elif status == pdu.ESME_RX_R_APPN:
        assert added == 0
    else:
        assert status == pdu.ESME_ROK
        assert added == 1 or (added == 0 and concat is not None and concat[1] > 1)
