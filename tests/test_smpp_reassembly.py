"""Long MO texts over SMPP against the fake SMSC: UDH (8- and 16-bit references) and SAR
TLVs, in any order, each part stored before its deliver_sm is answered."""

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.utils import timezone

from smsrouter import parts
from smsrouter.backends import backends
from smsrouter.backends.smpp import SmppBackend
from smsrouter.models import Direction, Message, PendingPart
from smsrouter.smpp import pdu
from smsrouter.smpp.pdu import Command, Pdu
from tests.smsc import FakeSmsc
from tests.stack import Stack

TIMEOUT = 10


@pytest.fixture
def smpp_settings(settings, smsc):
    settings.INSTALLED_BACKENDS = {"smpp": {
        "ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1",
        "port": smsc.port, "system_id": "smsrouter", "password": "secret",
        "source_addr": "15555", "throughput": 1000, "reconnect_backoff": 0.2}}
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.SMSROUTER_PARTS_TIMEOUT = 600
    return settings


@pytest_asyncio.fixture
async def backend(smpp_settings, smsc, async_db) -> AsyncIterator[SmppBackend]:
    """The backend, bound to the fake SMSC in this test's loop."""
    instance = backends["smpp"]
    await instance.activate()
    assert await asyncio.wait_for(smsc.binds.get(), TIMEOUT) == "smsrouter"
    yield instance
    await instance.deactivate()


def deliver(short_message: bytes, *, esm_class: int = 0, tlvs: dict[int, bytes] | None = None,
            source: str = "255700000001") -> bytes:
    return Pdu(Command.DELIVER_SM, 900, fields={
        "source_addr": source, "source_addr_ton": 1, "source_addr_npi": 1,
        "destination_addr": "15555", "esm_class": esm_class, "data_coding": 0,
        "short_message": short_message}, tlvs=tlvs or {}).encode()


def udh8(reference: int, total: int, number: int, text: bytes) -> bytes:
    return deliver(bytes([5, 0, 3, reference, total, number]) + text, esm_class=pdu.ESM_UDHI)


def udh16(reference: int, total: int, number: int, text: bytes) -> bytes:
    header = bytes([6, 8, 4, reference >> 8, reference & 0xFF, total, number])
    return deliver(header + text, esm_class=pdu.ESM_UDHI)


def sar(reference: int, total: int, number: int, text: bytes) -> bytes:
    return deliver(text, tlvs={pdu.TLV_SAR_MSG_REF_NUM: reference.to_bytes(2, "big"),
                               pdu.TLV_SAR_TOTAL_SEGMENTS: bytes([total]),
                               pdu.TLV_SAR_SEGMENT_SEQNUM: bytes([number])})


async def delivered(smsc, *pdus: bytes) -> None:
    """Send each deliver_sm and wait for its answer: ESME_ROK, once the part is stored."""
    for data in pdus:
        smsc.raw(data)
        answer = await asyncio.wait_for(smsc.answers.get(), TIMEOUT)
        assert answer.command_status == pdu.ESME_ROK


@sync_to_async
def inbound() -> list[tuple[str, str, dict]]:
    return [(m.connection.identity, m.text, m.fields) for m in Message.objects.filter(
        direction=Direction.IN).select_related("connection").order_by("pk")]


@pytest.mark.asyncio
@pytest.mark.parametrize("build", [udh8, udh16, sar], ids=["udh-8", "udh-16", "sar"])
async def test_parts_out_of_order_make_one_message(backend, smsc, build):
    reference = 0x42 if build is udh8 else 0x1234
    await delivered(smsc, build(reference, 3, 3, b"!"))
    assert await inbound() == []
    assert await sync_to_async(PendingPart.objects.count)() == 1  # stored before answered
    await delivered(smsc, build(reference, 3, 1, b"hello "), build(reference, 3, 2, b"world"))
    assert await inbound() == [("+255700000001", "hello world!", {})]


@pytest.mark.asyncio
async def test_16_bit_references_differing_in_their_high_octet_are_two_texts(backend, smsc):
    await delivered(smsc, udh16(0x0107, 2, 1, b"one "), udh16(0x0207, 2, 2, b"two"))
    assert await inbound() == []


@pytest.mark.asyncio
async def test_a_part_redelivered_after_its_text_was_routed_is_not_stored_again(backend, smsc):
    await delivered(smsc, sar(9, 2, 1, b"ab"), sar(9, 2, 2, b"cd"), sar(9, 2, 2, b"cd"))
    assert await inbound() == [("+255700000001", "abcd", {})]


@pytest.mark.asyncio
async def test_a_part_that_never_comes_leaves_the_rest_stored_after_the_timeout(backend, smsc):
    await delivered(smsc, udh8(5, 3, 1, b"first "), udh8(5, 3, 3, b"third"))
    assert await inbound() == []
    later = timezone.now() + timedelta(seconds=601)
    assert await sync_to_async(parts.expire)(later) == 1
    assert await inbound() == [("+255700000001", "first third",
                                {"parts": {"missing": [2], "total": 3}})]


@pytest.mark.asyncio
async def test_incomplete_sar_tlvs_leave_the_message_whole_with_what_was_wrong(backend, smsc):
    await delivered(smsc, deliver(b"hi", tlvs={pdu.TLV_SAR_MSG_REF_NUM: b"\x00\x01"}))
    [(_, text, fields)] = await inbound()
    assert text == "hi"
    assert fields["smpp"]["problems"] == [
        "SAR TLVs incomplete or of the wrong length: 0x020C=0001, 0x020E=, 0x020F="]


@pytest.mark.asyncio
async def test_parts_stored_before_a_restart_complete_in_the_new_process(backend, smsc):
    """What a process kill leaves: the first part's row, nothing in memory. A backend
    bound anew (as a new process would) completes the text from the database."""
    await delivered(smsc, udh8(7, 2, 1, b"before "))
    await backend.deactivate()
    await backend.activate()
    assert await asyncio.wait_for(smsc.binds.get(), TIMEOUT) == "smsrouter"
    await delivered(smsc, udh8(7, 2, 2, b"after"))
    assert await inbound() == [("+255700000001", "before after", {})]


#: How long a process may take to start, bind and answer.
PROCESS_TIMEOUT = 60


async def committed(stack: Stack, sql: str, holds: Callable[[list[tuple]], bool]) -> list[tuple]:
    """The rows `sql` reads from the stack's database once `holds(rows)`, within
    PROCESS_TIMEOUT."""
    async with asyncio.timeout(PROCESS_TIMEOUT):
        while not holds(rows := await asyncio.to_thread(stack.query, sql)):
            await asyncio.sleep(0.05)
    return rows


async def connected(stack: Stack, smsc: FakeSmsc) -> None:
    """`smsrouter_connect smpp` in a process of its own, once it has bound to the SMSC."""
    stack.start("connect", sys.executable, "manage.py", "smsrouter_connect", "smpp")
    assert await asyncio.wait_for(smsc.binds.get(), PROCESS_TIMEOUT) == "smsrouter"


@pytest.mark.processes
@pytest.mark.asyncio
@pytest.mark.parametrize("build", [sar, udh8], ids=["sar", "udh"])
async def test_a_part_answered_before_a_sigkill_completes_its_text_after_the_restart(
        smsc, tmp_path, build):
    """The first part's deliver_sm answered, the process holding the bind SIGKILLed: the
    part is in the database alone, and the process started again completes the text from
    it, routed once with one reply."""
    database = tmp_path / "db.sqlite3"
    stack = Stack(tmp_path, processing="inline", gateway_url="", broker=None, sqlite=database,
                  settings="tests.smpp_settings",
                  env={"SMSC_PORT": str(smsc.port), "SMPP_ENQUIRE_LINK": "1"})
    try:
        await connected(stack, smsc)
        await delivered(smsc, build(7, 2, 1, b"echo before "))
        stack.kill("connect")
        assert stack.query("SELECT count(*) FROM smsrouter_pendingpart") == [(1,)]
        assert stack.counts() == {}
        # The new process binds once the dead one's lease has run out (4 s here).
        await connected(stack, smsc)
        await delivered(smsc, build(7, 2, 2, b"after"))
        reply = await asyncio.wait_for(smsc.submits.get(), PROCESS_TIMEOUT)
        assert (reply.destination, reply.text) == ("255700000001", "before after")
        messages = await committed(
            stack, "SELECT id, direction, text, status, in_response_to_id FROM smsrouter_message "
            "ORDER BY id", lambda rows: len(rows) == 2 and rows[1][3] == "sent")
        [(incoming, *received), (_, *replied)] = messages
        assert received == ["in", "echo before after", "handled", None]
        assert replied == ["out", "before after", "sent", incoming]
        assert [s.text for s in smsc.submitted] == ["before after"]
    finally:
        stack.close()
