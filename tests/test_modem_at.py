"""The AT channel (smsrouter.modem.at) against a scripted byte stream: answers, errors,
unsolicited codes however they are cut up, the +CMGS prompt, a silent or vanished modem."""

import asyncio

import pytest
import pytest_asyncio

from smsrouter.modem.at import AtChannel, AtError, ModemGone, Unconfirmed, Unsolicited


class Line:
    """The modem's side of the wire: what the channel wrote, and bytes fed back to it."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self.written = bytearray()
        self.wrote = asyncio.Event()

    # The StreamWriter methods AtChannel uses.
    def write(self, data: bytes) -> None:
        self.written += data
        self.wrote.set()

    def close(self) -> None:
        self.reader.feed_eof()

    async def sent(self, ending: bytes) -> bytes:
        """Wait, by deadline, until the channel wrote something ending with `ending`."""
        async with asyncio.timeout(5):
            while not self.written.endswith(ending):
                self.wrote.clear()
                await self.wrote.wait()
        data, self.written[:] = bytes(self.written), b""
        return data


pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def wire():
    line, codes = Line(), []
    channel = AtChannel(line.reader, line, codes.append, timeout=5)
    yield line, channel, codes
    await channel.close()


async def answered(channel, line, command, *chunks):
    """Run `command`, feeding `chunks` once the channel has written it."""
    task = asyncio.create_task(channel.command(command))
    assert await line.sent(b"\r") == command.encode() + b"\r"
    for chunk in chunks:
        line.reader.feed_data(chunk)
    return await task


async def test_an_answer_is_its_lines_before_ok_without_the_echo(wire):
    line, channel, _ = wire
    lines = await answered(channel, line, "AT+CSQ", b"AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n")
    assert lines == ["+CSQ: 17,99"]


async def test_an_answer_cut_anywhere_is_read_whole(wire):
    line, channel, _ = wire
    data = b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    chunks = [data[i:i + 1] for i in range(len(data))]
    assert await answered(channel, line, "AT+CREG?", *chunks) == ["+CREG: 0,1"]


@pytest.mark.parametrize(("answer", "kind", "code", "words", "temporary"), [
    (b"+CME ERROR: 16\r\n", "CME", 16, "+CME ERROR: 16 (incorrect password)", False),
    (b"+CMS ERROR: 331\r\n", "CMS", 331, "+CMS ERROR: 331 (no network service)", True),
    (b"+CMS ERROR: 304\r\n", "CMS", 304, "+CMS ERROR: 304 (invalid PDU mode parameter)",
     False),
    (b"ERROR\r\n", "", None, "ERROR", False),
])
async def test_an_error_answer_is_an_at_error_that_says_what(wire, answer, kind, code, words,
                                                             temporary):
    line, channel, _ = wire
    with pytest.raises(AtError) as caught:
        await answered(channel, line, "AT+X", answer)
    assert (caught.value.kind, caught.value.code, caught.value.temporary) == (
        kind, code, temporary)
    assert str(caught.value) == f"AT+X: {words}"


async def test_several_indications_in_one_read_each_reach_the_bridge(wire):
    """python-gsmmodem-new 0.13.0 handles only the first of several that arrive together."""
    line, channel, codes = wire
    line.reader.feed_data(b'\r\n+CMTI: "SM",1\r\n\r\n+CMTI: "SM",2\r\n+CDS: 6\r\n0006A1B2\r\n'
                          b'+CMTI: "SM",3\r\n')
    await answered(channel, line, "AT", b"OK\r\n")
    assert codes == [Unsolicited('+CMTI: "SM",1'), Unsolicited('+CMTI: "SM",2'),
                     Unsolicited("+CDS: 6", "0006A1B2"), Unsolicited('+CMTI: "SM",3')]


async def test_an_indication_within_an_answer_is_not_taken_for_part_of_it(wire):
    line, channel, codes = wire
    lines = await answered(channel, line, "AT+CMGL=4",
                           b"+CMGL: 1,1,,5\r\n07911122\r\n+CMTI: \"SM\",2\r\nOK\r\n")
    assert lines == ["+CMGL: 1,1,,5", "07911122"]
    assert codes == [Unsolicited('+CMTI: "SM",2')]


async def test_a_submit_waits_for_the_prompt_then_ends_the_pdu_with_ctrl_z(wire):
    line, channel, _ = wire
    task = asyncio.create_task(channel.submit(17, "0011000B91"))
    assert await line.sent(b"\r") == b"AT+CMGS=17\r"
    line.reader.feed_data(b"\r\n> ")
    assert await line.sent(b"\x1a") == b"0011000B91\x1a"
    line.reader.feed_data(b"\r\n+CMGS: 42\r\n\r\nOK\r\n")
    assert await task == ["+CMGS: 42"]


async def test_no_prompt_cancels_the_submit_with_esc(wire):
    line, channel, _ = wire
    channel.timeout = 0.05
    with pytest.raises(TimeoutError):
        await channel.submit(17, "0011")
    assert line.written.endswith(b"\x1b")


async def test_no_answer_after_the_pdu_is_unconfirmed_not_a_plain_timeout(wire):
    """The modem may have sent it: the bridge must not send it again."""
    line, channel, _ = wire
    task = asyncio.create_task(channel.submit(17, "0011", timeout=0.05))
    await line.sent(b"\r")
    line.reader.feed_data(b"> ")
    with pytest.raises(Unconfirmed):
        await task


async def test_a_silent_modem_is_a_timeout_that_closes_the_channel(wire):
    """Its late OK must not answer the next command: the bridge reopens the port instead."""
    line, channel, _ = wire
    with pytest.raises(TimeoutError, match="no answer to AT in 0.05 s"):
        await channel.command("AT", timeout=0.05)
    assert channel.closed.is_set()
    with pytest.raises(ModemGone):
        await channel.command("AT+CSQ")


async def test_a_vanished_port_fails_the_waiting_command_and_every_later_one(wire):
    line, channel, _ = wire
    task = asyncio.create_task(channel.command("AT+CSQ"))
    await line.sent(b"\r")
    line.reader.feed_eof()
    with pytest.raises(ModemGone):
        await task
    assert channel.closed.is_set()
    with pytest.raises(ModemGone):
        await channel.command("AT")
