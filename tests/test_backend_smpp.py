"""The SMPP backend against a fake SMSC on loopback: binds, MT, MO, receipts, link drops."""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError

import smsrouter
from smsrouter import limits, sender
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome
from smsrouter.backends.smpp import SmppBackend
from smsrouter.dispatch import Duties
from smsrouter.exceptions import PermanentSendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Backend, Connection, Message
from smsrouter.scheduler import Scheduler
from smsrouter.signals import messages_changed
from smsrouter.smpp import pdu
from smsrouter.smpp.pdu import Command, Pdu
from tests.smsc import with_length

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10
TO = "+255700000001"


async def within(awaitable):
    return await asyncio.wait_for(awaitable, TIMEOUT)




@pytest.fixture
def smpp_settings(settings, smsc):
    settings.INSTALLED_BACKENDS = {"smpp": {
        "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1",
        "port": smsc.port, "system_id": "smsrouter", "password": "secret",
        "source_addr": "15555", "throughput": 1000, "reconnect_backoff": 0.2}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return settings


@pytest.fixture
def states() -> asyncio.Queue:
    """Link states as the backend reports them: bound, reconnecting, unbound."""
    return asyncio.Queue()


@pytest_asyncio.fixture
async def backend(smpp_settings, smsc, states) -> AsyncIterator[SmppBackend]:
    """The backend, bound to the fake SMSC in this test's loop."""
    instance = backends["smpp"]
    assert isinstance(instance, SmppBackend)
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    assert await within(smsc.binds.get()) == "smsrouter"
    assert (await within(states.get()))[0] == "bound"
    yield instance
    await instance.deactivate()


@pytest_asyncio.fixture
async def rounds(backend, smpp_settings, monkeypatch, async_db) -> AsyncIterator[asyncio.Queue]:
    """The bind's scheduler, as smsrouter_connect runs it, in this test's loop: what it
    claimed in each of its sweeps (sender.Round), as each one ends."""
    smpp_settings.SMSROUTER_SWEEP_EVERY = 0.05
    done: asyncio.Queue[sender.Round] = asyncio.Queue()
    original = sender.send_due

    async def send_due(**options):
        result = await original(**options)
        done.put_nowait(result)
        return result

    monkeypatch.setattr(sender, "send_due", send_due)
    scheduler = Scheduler(Duties(("smpp",), sweeps=False, periodic=False))
    await scheduler.start()
    yield done
    await scheduler.stop()


async def next_sweep(rounds: asyncio.Queue) -> "sender.Round":
    """The next sweep to end from now on (those ended before are dropped)."""
    while not rounds.empty():
        rounds.get_nowait()
    return await within(rounds.get())


def stored(**filters) -> Callable[[], Awaitable[list[Message]]]:
    return sync_to_async(lambda: list(
        Message.objects.filter(**filters).select_related("connection").order_by("pk")))


async def until(read: Callable[[], Awaitable[list[Message]]],
                holds: Callable[[list[Message]], bool]) -> list[Message]:
    """The rows `read()` gives once `holds(rows)`, polled within TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        while not holds(rows := await read()):
            await asyncio.sleep(0.01)
    return rows


def sent(*pks: int) -> Callable[[list[Message]], bool]:
    """Whether the rows read are these, each one sent."""
    return lambda rows: [(m.pk, m.status) for m in rows] == [(pk, "sent") for pk in pks]


def message(text: str, to: str = TO) -> OutgoingMessage:
    """An outgoing message with no row, for send() straight."""
    return OutgoingMessage(text, Connection(backend=Backend(name="smpp"), identity=to))


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.asyncio
async def test_binds_with_its_system_id_and_password(backend):
    assert backend.link is not None and backend.link.bound


@pytest.mark.asyncio
async def test_it_binds_inside_the_asgi_server_through_lifespan(smpp_settings, smsc, async_db):
    """One process: lifespan startup activates the backend in the server's loop."""
    from channels.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application

    from smsrouter.asgi import build_application

    server = ApplicationCommunicator(build_application(get_asgi_application()), {"type": "lifespan"})
    await server.send_input({"type": "lifespan.startup"})
    assert await server.receive_output(timeout=TIMEOUT) == {"type": "lifespan.startup.complete"}
    assert await within(smsc.binds.get()) == "smsrouter"
    smsc.deliver(TO, "echo served")
    assert (await within(smsc.submits.get())).text == "served"
    await server.send_input({"type": "lifespan.shutdown"})
    assert await server.receive_output(timeout=TIMEOUT) == {"type": "lifespan.shutdown.complete"}
    assert backends["smpp"].link is None or not backends["smpp"].link.bound


@pytest.mark.asyncio
async def test_a_refused_bind_is_reported_and_retried(smpp_settings, smsc, states):
    smpp_settings.INSTALLED_BACKENDS["smpp"]["password"] = "wrong"
    instance = backends["smpp"]
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    for _ in range(2):
        state, detail = await within(states.get())
        assert state == "reconnecting" and "ESME_RINVPASWD" in detail
    await instance.deactivate()


@pytest.mark.asyncio
async def test_a_gsm_text_is_submitted_in_the_default_alphabet(backend, smsc, rounds):
    [queued] = await smsrouter.asend("Hello @home, 5€", TO, backend="smpp")
    assert queued.status == "queued"  # the bind's scheduler sends it once committed
    sub = await within(smsc.submits.get())
    fields = sub.pdu.fields
    assert (sub.destination, fields["dest_addr_ton"], fields["dest_addr_npi"]) == ("255700000001", 1, 1)
    assert (fields["source_addr"], fields["data_coding"], fields["esm_class"],
            fields["registered_delivery"]) == ("15555", 0, 0, 1)
    assert fields["short_message"] == b"Hello \x00home, 5\x1b\x65"
    [row] = await until(stored(pk=queued.id), sent(queued.id))
    assert (row.status, row.external_id, row.attempts) == ("sent", sub.message_id, 1)


@pytest.mark.asyncio
async def test_a_long_amharic_text_goes_as_ucs2_parts_with_a_udh(backend, smsc, rounds):
    text = "ሰላም ለዓለም። " * 15
    [queued] = await smsrouter.asend(text, TO, backend="smpp")
    parts = [await within(smsc.submits.get()) for _ in range(3)]
    assert [(p.pdu.fields["data_coding"], p.pdu.fields["esm_class"], p.udh[1:]) for p in parts] == [
        (8, 0x40, (3, 1)), (8, 0x40, (3, 2)), (8, 0x40, (3, 3))]
    assert len({p.udh[0] for p in parts}) == 1
    assert smsc.texts() == [text]
    [row] = await until(stored(pk=queued.id), sent(queued.id))
    assert (row.status, row.external_id) == ("sent", parts[0].message_id)


@pytest.mark.asyncio
async def test_mo_is_routed_and_the_reply_submitted_then_its_receipt_applied(backend, smsc,
                                                                            rounds):
    smsc.deliver(TO, "echo hi")
    reply = await within(smsc.submits.get())
    assert (reply.destination, reply.text) == ("255700000001", "hi")
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    [incoming] = await stored(direction="in")()
    assert (incoming.text, incoming.connection.identity, incoming.status) == (
        "echo hi", TO, "handled")
    # The SMSC's id is recorded once submit_sm_resp is in; a receipt for it comes after.
    [out] = await until(stored(direction="out"), lambda rows: rows[0].status == "sent")
    assert (out.external_id, out.in_response_to_id) == (reply.message_id, incoming.id)
    smsc.receipt(reply.message_id, "DELIVRD")
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    [out] = await stored(direction="out")()
    assert (out.status, out.external_id) == ("delivered", reply.message_id)


@pytest.mark.asyncio
async def test_an_undeliverable_receipt_fails_the_message(backend, smsc, rounds):
    [queued] = await smsrouter.asend("hi", TO, backend="smpp")
    [row] = await until(stored(pk=queued.id), sent(queued.id))
    smsc.receipt(row.external_id, "UNDELIV", "012")
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    [out] = await stored(pk=queued.id)()
    assert (out.status, out.error) == ("failed", "SMPP stat:UNDELIV err:012")


@pytest.mark.asyncio
async def test_a_receipt_for_an_unknown_id_is_answered_and_ignored(backend, smsc, rounds):
    smsc.receipt("nosuchid", "DELIVRD")
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    smsc.deliver(TO, "echo still here")
    assert (await within(smsc.submits.get())).text == "still here"


@pytest.mark.asyncio
async def test_a_long_mo_is_reassembled_before_routing(backend, smsc, rounds):
    text = "echo " + "ሰላም ለዓለም። " * 15
    smsc.deliver(TO, text)
    for _ in range(3):
        assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    replies = [await within(smsc.submits.get()) for _ in range(3)]
    assert "".join(r.text for r in replies) == text.removeprefix("echo ").strip()
    [incoming] = await stored(direction="in")()
    assert incoming.text == text


@pytest.mark.asyncio
async def test_messages_sent_while_the_link_is_down_wait_and_go_once(backend, smsc, states,
                                                                     rounds):
    smsc.refuse_binds = True
    smsc.drop()
    assert (await within(states.get()))[0] == "reconnecting"
    queued = await smsrouter.asend("while down", [TO, "+255700000002", "+255700000003"],
                                   backend="smpp")
    assert [m.status for m in queued] == ["queued"] * 3
    # A whole sweep after the commit, unbound: nothing claimed, nothing tried.
    assert (await next_sweep(rounds)).claimed == 0
    assert [(m.status, m.attempts) for m in await stored(direction="out")()] == [("queued", 0)] * 3
    assert smsc.submitted == []
    smsc.refuse_binds = False
    await within(smsc.binds.get())
    rows = await until(stored(direction="out"), sent(*(m.id for m in queued)))
    assert sorted(s.destination for s in smsc.submitted) == [
        "255700000001", "255700000002", "255700000003"]
    assert [(m.status, m.attempts, m.external_id) for m in rows] == [
        ("sent", 1, s.message_id) for s in sorted(smsc.submitted, key=lambda s: s.destination)]
    # Once: the next sweep finds nothing left to send.
    assert (await next_sweep(rounds)).claimed == 0
    assert len(smsc.submitted) == 3


@pytest.mark.asyncio
async def test_a_throttled_submit_is_retried(backend, smsc, smpp_settings, rounds):
    """A temporary refusal is queued again with backoff, then sent by the bind's scheduler."""
    smpp_settings.SMSROUTER_SEND_BACKOFF = 0.05
    smpp_settings.SMSROUTER_SEND_BACKOFF_MAX = 0.1
    smpp_settings.SMSROUTER_SEND_MAX_ATTEMPTS = 3
    history: list[tuple[str, int, str, bool]] = []

    def changed(sender, messages, **kwargs):
        history.extend((m.status, m.attempts, m.error, m.due_at is not None)
                       for m in messages if m.direction == "out")

    smsc.throttle = 1
    messages_changed.connect(changed)
    try:
        [queued] = await smsrouter.asend("busy?", TO, backend="smpp")
        [row] = await until(stored(pk=queued.id), sent(queued.id))
    finally:
        messages_changed.disconnect(changed)
    assert history == [
        ("queued", 0, "", False),  # stored
        ("queued", 1, "SMPP submit_sm: ESME_RTHROTTLED (0x00000058)", True),  # refused: later
        ("sent", 2, "", False)]
    assert (row.status, row.attempts, row.error, row.external_id) == (
        "sent", 2, "", smsc.submitted[0].message_id)
    assert len(smsc.submitted) == 1 and smsc.throttle == 0


@pytest.mark.asyncio
async def test_a_throttled_submit_fails_on_the_last_attempt(backend, smsc, smpp_settings, rounds):
    smpp_settings.SMSROUTER_SEND_BACKOFF = 0.05
    smpp_settings.SMSROUTER_SEND_BACKOFF_MAX = 0.1
    smpp_settings.SMSROUTER_SEND_MAX_ATTEMPTS = 2
    smsc.throttle = 2
    [queued] = await smsrouter.asend("busy?", TO, backend="smpp")
    [row] = await until(stored(pk=queued.id), lambda rows: rows[0].status == "failed")
    assert (row.attempts, row.error, row.due_at) == (
        2, "SMPP submit_sm: ESME_RTHROTTLED (0x00000058)", None)
    assert smsc.submitted == [] and smsc.throttle == 0


@pytest.mark.asyncio
async def test_send_gives_each_message_the_smscs_id_for_its_first_part(backend, smsc):
    outcomes = await backend.send([message("Hello"), message("ሰላም ለዓለም። " * 15, "+255700000002")])
    by_part = {(s.destination, s.udh[2] if s.udh else 1): s.message_id for s in smsc.submitted}
    assert len(by_part) == 4
    assert outcomes == [Outcome(external_id=by_part[("255700000001", 1)]),
                        Outcome(external_id=by_part[("255700000002", 1)])]


@pytest.mark.asyncio
async def test_a_throttled_submit_is_a_temporary_outcome(backend, smsc):
    smsc.throttle = 1
    assert await backend.send([message("busy?"), message("next", "+255700000002")]) == [
        Outcome(error="SMPP submit_sm: ESME_RTHROTTLED (0x00000058)", temporary=True),
        Outcome(external_id=smsc.submitted[0].message_id)]


@pytest.mark.asyncio
async def test_ready_only_while_bound_and_unbound_sends_are_temporary(backend, smsc, states):
    """The sender claims nothing for an unbound backend; one that raced the drop is retried."""
    assert backend.ready()
    smsc.refuse_binds = True
    smsc.drop()
    assert (await within(states.get()))[0] == "reconnecting"
    assert not backend.ready()
    assert await backend.send([message("while down")]) == [
        Outcome(error="SMPP backend 'smpp' is not bound in this process", temporary=True)]
    assert smsc.submitted == []


def deliver_sm(short_message: bytes, *, source: str = "255700000001", ton: int = 1,
               esm_class: int = 0, data_coding: int = 0) -> bytes:
    """A deliver_sm's octets, sequence_number 900, to be sent as they are or broken first."""
    return Pdu(Command.DELIVER_SM, 900, fields={
        "source_addr": source, "source_addr_ton": ton, "source_addr_npi": 1,
        "destination_addr": "15555", "esm_class": esm_class, "data_coding": data_coding,
        "short_message": short_message}).encode()


HELLO = deliver_sm(b"hello")
OVERSIZED = pdu.HEADER.pack(pdu.MAX_PDU_SIZE + 1, Command.DELIVER_SM, 0, 900)
NACK, RESP = Command.GENERIC_NACK, Command.DELIVER_SM_RESP


def udh(octets: bytes) -> bytes:
    return deliver_sm(octets, esm_class=pdu.ESM_UDHI)


@pytest.mark.parametrize(("data", "answer", "kept"), [
    pytest.param(udh(b"\x03\x00\x03\x07hello"), (RESP, pdu.ESME_ROK),
                 ("hello", "UDH element 0x00 of 3 octets runs past the header",
                  b"\x03\x00\x03\x07hello"), id="truncated-udh"),
    pytest.param(udh(b"\x09\x00\x03hi"), (RESP, pdu.ESME_ROK),
                 ("Ç@¥hi", "UDH length 9 but 4 octets follow it", b"\x09\x00\x03hi"),
                 id="udh-longer-than-the-text"),
    pytest.param(udh(b"\x05\x00\x03\x07\x00\x01hi"), (RESP, pdu.ESME_ROK),
                 ("hi", "concatenation part 1 of 0", b"\x05\x00\x03\x07\x00\x01hi"),
                 id="concatenation-of-0-parts"),
    pytest.param(udh(b"\x05\x00\x03\x07\x02\x03hi"), (RESP, pdu.ESME_ROK),
                 ("hi", "concatenation part 3 of 2", b"\x05\x00\x03\x07\x02\x03hi"),
                 id="part-past-the-total"),
    pytest.param(deliver_sm(b"\x00h\x00i\x00", data_coding=8), (RESP, pdu.ESME_ROK),
                 ("hi\ufffd", "not utf-16-be: truncated data at octet 4", b"\x00h\x00i\x00"),
                 id="odd-length-ucs2"),
    pytest.param(deliver_sm(b"hi\x80"), (RESP, pdu.ESME_ROK),
                 ("hi\ufffd", "octet 2 (0x80) is no GSM 03.38 septet", b"hi\x80"),
                 id="invalid-septet"),
    pytest.param(deliver_sm(b"hi", data_coding=4), (RESP, pdu.ESME_ROK),
                 ("hi", "data_coding 0x04 is not one this ESME reads", b"hi"),
                 id="unknown-data-coding"),
    pytest.param(with_length(HELLO[:-6] + b"\xc8hello"), (RESP, pdu.ESME_ROK),
                 ("hello", "sm_length 200 runs past the PDU (5 octets left)", b"hello"),
                 id="sm-length-lies"),
    pytest.param(with_length(HELLO + b"\x04\x24\x00\x09abc"), (RESP, pdu.ESME_ROK),
                 ("hello", "optional parameter 0x0424 of 9 octets runs past the PDU "
                  "(3 octets left)", b"hello"), id="tlv-length-lies"),
    pytest.param(deliver_sm(b"hello", source="", ton=0), (RESP, pdu.ESME_RX_R_APPN), None,
                 id="no-sender"),
    pytest.param(with_length(HELLO.replace(b"255700000001\0", b"2" * 101 + b"\0")),
                 (RESP, pdu.ESME_RX_R_APPN), None,
                 id="sender-over-100-characters"),
    pytest.param(deliver_sm(b"\xff\xfe no receipt", esm_class=pdu.ESM_RECEIPT),
                 (RESP, pdu.ESME_ROK), None, id="undecodable-receipt"),
    pytest.param(Pdu(Command.DELIVER_SM, 900, fields={
        "esm_class": pdu.ESM_RECEIPT, "short_message": b"stat:DELIVRD"}, tlvs={
        pdu.TLV_RECEIPTED_MESSAGE_ID: b"9" * 300 + b"\0"}).encode(),
                 (RESP, pdu.ESME_ROK), None, id="receipted-id-over-255"),
    pytest.param(pdu.HEADER.pack(16, 0x00000103, 0, 900), (NACK, pdu.ESME_RINVCMDID), None,
                 id="unknown-command-id"),
    pytest.param(pdu.HEADER.pack(8, Command.DELIVER_SM, 0, 900), (NACK, pdu.ESME_RINVCMDLEN),
                 None, id="command-length-below-the-header"),
    pytest.param(OVERSIZED + bytes(pdu.MAX_PDU_SIZE + 1 - pdu.HEADER_SIZE),
                 (NACK, pdu.ESME_RINVCMDLEN), None, id="command-length-over-the-maximum"),
])
@pytest.mark.asyncio
async def test_a_malformed_pdu_is_answered_logged_and_kept_if_it_reads_and_the_link_goes_on(
        backend, smsc, states, caplog, async_db, data, answer, kept):
    """Answered so that the SMSC does not send it again (a deliver_sm_resp for any deliver_sm
    whose header reads), logged with its octets, stored as well as it reads; then the next
    deliver_sm is taken on the same bind."""
    caplog.set_level(logging.WARNING, logger="smsrouter.smpp.malformed")
    smsc.raw(data)
    got = await within(smsc.answers.get())
    assert (got.command_id, got.command_status, got.sequence_number) == (*answer, 900)
    logged = data[:pdu.HEADER_SIZE] if data.startswith(OVERSIZED) else data
    assert any(r.name == "smsrouter.smpp.malformed" and r.levelno == logging.WARNING
               and logged.hex() in r.getMessage() for r in caplog.records)
    rows = await stored(direction="in")()
    if kept is None:
        assert rows == []
    else:
        text, problem, short_message = kept
        [row] = rows
        assert (row.text, row.connection.identity) == (text, TO)
        assert row.fields["smpp"] == {"problems": [problem], "short_message": [short_message.hex()]}
    smsc.deliver(TO, "still here")
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    assert [m.text for m in await stored(direction="in")()][-1] == "still here"
    assert backend.link is not None and backend.link.bound
    assert states.empty() and smsc.binds.empty()  # never dropped, never bound again


@pytest.mark.asyncio
async def test_a_long_text_with_a_malformed_part_is_kept_whole_with_what_was_wrong(backend, smsc,
                                                                                   async_db):
    first, second = (bytes([5, 0, 3, 0x42, 2, number]) for number in (1, 2))
    smsc.raw(udh(first + b"abc"))
    smsc.raw(udh(second + b"de\x80"))
    for _ in range(2):
        assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    [row] = await stored(direction="in")()
    assert row.text == "abcde\ufffd"
    assert row.fields["parts"]["fields"] == [{}, {"smpp": {
        "problems": ["octet 2 (0x80) is no GSM 03.38 septet"],
        "short_message": [(second + b"de\x80").hex()]}}]


@pytest.mark.asyncio
async def test_a_nul_in_a_ucs2_text_is_stored_on_every_database(backend, smsc, async_db):
    """UTF-16 carries NUL, which PostgreSQL refused: answered ESME_RX_T_APPN, redelivered
    for ever. It is stored as U+FFFD, the exact text kept in fields (smsrouter.limits)."""
    smsc.raw(deliver_sm("h\0i".encode("utf-16-be"), data_coding=pdu.CODING_UCS2))
    assert (await within(smsc.answers.get())).command_status == pdu.ESME_ROK
    [row] = await stored(direction="in")()
    assert (row.text, limits.original_text(row.fields)) == ("h\ufffdi", "h\0i")


@pytest.mark.asyncio
async def test_a_malformed_submit_sm_resp_settles_the_submit_as_far_as_it_reads(backend, smsc):
    """Its status is in the header: ESME_ROK with a message_id that lacks its NUL is sent,
    not left to time out and be submitted again (a second SMS to the handset)."""
    smsc.corrupt = lambda octets: with_length(octets[:-1])  # message_id's NUL cut off
    [outcome] = await backend.send([message("hi")])
    [sub] = smsc.submitted
    assert outcome == Outcome(external_id=sub.message_id)


def test_a_process_that_did_not_activate_it_is_not_ready(smpp_settings):
    assert not backends["smpp"].ready()


@pytest.mark.asyncio
async def test_each_bind_wakes_the_scheduler_with_the_backend_ready(smpp_settings, smsc,
                                                                     monkeypatch):
    """So that what was left queued while unbound goes at once."""
    from smsrouter import scheduler

    woken: asyncio.Queue[bool] = asyncio.Queue()
    instance = backends["smpp"]
    monkeypatch.setattr(scheduler, "wake", lambda: woken.put_nowait(instance.ready()))
    await instance.activate()
    try:
        assert await within(woken.get()) is True
        smsc.drop()
        assert await within(woken.get()) is True  # bound again
    finally:
        await instance.deactivate()


@pytest.mark.asyncio
async def test_a_receiver_bind_is_never_ready_and_cannot_send(smpp_settings, smsc, states,
                                                              monkeypatch):
    from smsrouter import scheduler

    monkeypatch.setattr(scheduler, "wake", lambda: pytest.fail("a receiver bind woke the sender"))
    config = smpp_settings.INSTALLED_BACKENDS["smpp"]
    smpp_settings.INSTALLED_BACKENDS = {"smpp": {**config, "bind_type": "receiver"}}
    instance = backends["smpp"]
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    try:
        assert (await within(states.get()))[0] == "bound"
        assert instance.link is not None and instance.link.bound
        assert not instance.ready()
        with pytest.raises(PermanentSendError, match="binds as a receiver: it cannot send"):
            await instance.send([message("hi")])
    finally:
        await instance.deactivate()


@pytest.mark.asyncio
async def test_a_process_without_the_bind_leaves_messages_queued(smpp_settings, async_db):
    [message] = await smsrouter.asend("later", TO, backend="smpp")
    assert message.status == "queued"


def test_option_values_are_checked():
    errors = SmppBackend.check_config("smpp", {
        "host": "h", "port": 70000, "bind_type": "both", "throughput": 0,
        "system_id": "x" * 16, "source_addr_ton": 300})
    assert [e.id for e in errors] == ["smsrouter.E070", "smsrouter.E071", "smsrouter.E072",
                                      "smsrouter.E075", "smsrouter.E074"]
    assert SmppBackend.check_config("smpp", {"host": "h", "port": 2775}) == []


def test_connect_refuses_an_unknown_backend_and_one_without_a_link(settings):
    settings.INSTALLED_BACKENDS = {"http": {"ENGINE": "tests.backends.RecordingBackend"}}
    with pytest.raises(CommandError, match="No backend named 'nope'"):
        call_command("smsrouter_connect", "nope")
    with pytest.raises(CommandError, match="keeps no link to hold"):
        call_command("smsrouter_connect", "http")


async def read_json(stream: asyncio.StreamReader) -> dict:
    line = await within(stream.readline())
    assert line, "the process ended"
    return json.loads(line)


@pytest.mark.processes
@pytest.mark.asyncio
async def test_smsrouter_connect_in_its_own_process(tmp_path):
    """MO in from an SMSC process, through `smsrouter_connect` and EchoApp, echo out."""
    smsc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.smsc", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert smsc.stdout and smsc.stdin
    port = (await read_json(smsc.stdout))["port"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.smpp_settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SMSC_PORT": str(port),
           "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, env=env, check=True, timeout=120)
    connect = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "smsrouter_connect", "smpp", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert await read_json(smsc.stdout) == {"bound": "smsrouter"}
        smsc.stdin.write(json.dumps({"deliver": {"source": TO, "text": "echo hello"}}).encode() + b"\n")
        submit = (await read_json(smsc.stdout))["submit"]
        assert (submit["destination"], submit["text"]) == ("255700000001", "hello")
    finally:
        connect.send_signal(signal.SIGTERM)
        output, _ = await within(connect.communicate())
        smsc.stdin.close()
        await within(smsc.wait())
    assert connect.returncode == 0
    lines = output.decode().splitlines()
    assert lines[0] == "smpp: connecting (SmppBackend)" and lines[1].startswith("bound as 'smsrouter'")
    assert lines[-2:] == [f"unbound from 127.0.0.1:{port}", "smpp: stopped"]
