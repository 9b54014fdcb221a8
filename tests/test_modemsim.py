"""The simulated modem (tests/modemsim.py) as a serial client sees it: plain
pyserial-asyncio-fast on its pty, byte for byte, so that the bridge's tests rest on a modem
that answers as 3GPP TS 27.005 and 27.007 say. Every wait has a deadline; none sleeps."""

import asyncio
import json
import re
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
import serial_asyncio_fast

from smsrouter.modem import pdu
from tests.modemsim import start

pytestmark = pytest.mark.asyncio

PHONE = "+255700000001"
EAT = timezone(timedelta(hours=3))
WHEN = datetime(2026, 12, 3, 9, 0, 5, tzinfo=EAT)
LONG = "Long reports from the clinic arrive as parts, joined again by the router. " * 3
FINAL = re.compile(rb"\r\n(?:OK|ERROR|\+CM[ES] ERROR: [^\r]*)\r\n")
DEADLINE = 5


class Port:
    """The client's end of the serial line: what it writes, and what it reads by deadline."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pending = b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, pattern: re.Pattern[bytes] | bytes) -> bytes:
        """Everything read up to and with the first match of `pattern`."""
        pattern = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        async with asyncio.timeout(DEADLINE):
            while (match := pattern.search(self.pending)) is None:
                chunk = await self.reader.read(4096)
                assert chunk, f"the port closed; read so far: {self.pending!r}"
                self.pending += chunk
        data, self.pending = self.pending[:match.end()], self.pending[match.end():]
        return data

    async def answer(self, command: str) -> bytes:
        """`command` sent, and all the modem wrote until its final result."""
        await self.write(command.encode() + b"\r")
        return await self.expect(FINAL)

    async def chunk(self) -> bytes:
        """The next single read, when nothing is pending: what arrived together."""
        assert self.pending == b""
        async with asyncio.timeout(DEADLINE):
            return await self.reader.read(4096)


@asynccontextmanager
async def opened(link):
    reader, writer = await serial_asyncio_fast.open_serial_connection(
        url=str(link), baudrate=115200)
    try:
        yield Port(reader, writer)
    finally:
        writer.close()


async def ready(port: Port) -> None:
    """The set-up the bridge makes: no echo, numeric errors, PDU mode, indications."""
    for command in ("ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"):
        assert (await port.answer(command)).endswith(b"\r\nOK\r\n"), command


def submit(text: str, to: str = PHONE) -> pdu.SubmitPdu:
    (part,) = pdu.encode_submit(to, text, concat_reference=1)
    return part


async def send(port: Port, part: pdu.SubmitPdu) -> bytes:
    """AT+CMGS: the prompt, the PDU and Ctrl-Z; the answer to it."""
    await port.write(f"AT+CMGS={part.length}\r".encode())
    assert await port.expect(b"\r\n> ") == b"\r\n> "
    await port.write(part.hex.encode() + b"\x1a")
    return await port.expect(FINAL)


async def test_echo_is_on_until_ate0_and_every_answer_is_framed_by_cr_lf(modem):
    async with opened(modem.link) as port:
        assert await port.answer("AT") == b"AT\r\r\nOK\r\n"
        assert await port.answer("ATE0") == b"ATE0\r\r\nOK\r\n"
        assert await port.answer("AT") == b"\r\nOK\r\n"
        assert await port.answer("AT+CSQ") == b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
        assert await port.answer("AT+NOSUCH") == b"\r\nERROR\r\n"


async def test_a_sim_with_a_pin_refuses_sms_commands_and_a_wrong_pin(modem_with_pin):
    async with opened(modem_with_pin.link) as port:
        await port.answer("ATE0")
        assert await port.answer("AT+CMGF=0") == b"\r\nERROR\r\n"  # AT+CMEE=0: bare
        await port.answer("AT+CMEE=1")
        assert await port.answer("AT+CMGF=0") == b"\r\n+CME ERROR: 11\r\n"
        assert await port.answer("AT+CMGL=4") == b"\r\n+CME ERROR: 11\r\n"
        assert await port.answer("AT+CPIN?") == b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
        assert await port.answer('AT+CPIN="0000"') == b"\r\n+CME ERROR: 16\r\n"
        assert await port.answer('AT+CPIN="1234"') == b"\r\nOK\r\n"
        assert await port.answer("AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
        assert await port.answer("AT+CMGF=0") == b"\r\nOK\r\n"
        assert await port.answer('AT+CPIN="1234"') == b"\r\n+CME ERROR: 3\r\n"
    assert modem_with_pin.pin_attempts() == 2


async def test_three_wrong_pins_leave_the_sim_wanting_its_puk(modem_with_pin):
    async with opened(modem_with_pin.link) as port:
        await port.answer("ATE0")
        await port.answer("AT+CMEE=2")
        for _ in range(3):
            assert await port.answer("AT+CPIN=1111") == b"\r\n+CME ERROR: incorrect password\r\n"
        assert await port.answer("AT+CPIN?") == b"\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
        assert await port.answer("AT+CPIN=1234") == b"\r\n+CME ERROR: SIM PUK required\r\n"
    modem_with_pin.unplug()
    modem_with_pin.plug()
    async with opened(modem_with_pin.link) as port:  # the SIM, not the modem, counts
        assert await port.answer("AT+CPIN?") == b"AT+CPIN?\r\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    assert modem_with_pin.pin_attempts() == 3


async def test_signal_and_registration_follow_the_network(modem):
    async with opened(modem.link) as port:
        await ready(port)
        assert await port.answer("AT+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
        modem.network(False, rssi=7)
        assert await port.answer("AT+CREG?") == b"\r\n+CREG: 0,0\r\n\r\nOK\r\n"
        assert await port.answer("AT+CSQ") == b"\r\n+CSQ: 7,99\r\n\r\nOK\r\n"
        await port.answer("AT+CREG=1")
        modem.network(True)
        assert await port.chunk() == b"\r\n+CREG: 1\r\n"  # unsolicited, with AT+CREG=1
        await port.answer("AT+CREG=2")
        assert await port.answer("AT+CREG?") == b'\r\n+CREG: 2,1,"00A1","1B2C"\r\n\r\nOK\r\n'


async def test_a_two_part_sms_is_announced_by_two_cmti_lines_in_one_write(modem):
    async with opened(modem.link) as port:
        await ready(port)
        # The port is read while the SMS arrives, so that lines written one by one
        # would come in reads of their own.
        read = asyncio.create_task(port.chunk())
        assert await asyncio.to_thread(
            modem.deliver, PHONE, LONG, timestamp=WHEN.isoformat()) == [1, 2]
        assert await read == b'\r\n+CMTI: "SM",1\r\n\r\n+CMTI: "SM",2\r\n'
        listed = await port.answer("AT+CMGL=4")
    lines = listed.split(b"\r\n")
    assert lines[-2:] == [b"OK", b""]
    headers, bodies = lines[1:-3:2], [line.decode() for line in lines[2:-3:2]]
    parts = [pdu.decode(body) for body in bodies]
    assert headers == [f"+CMGL: {i},0,,{len(bytes.fromhex(b)) - 8}".encode()
                       for i, b in enumerate(bodies, start=1)]  # unread; SMSC address is 8
    assert "".join(part.text for part in parts) == LONG
    assert [(p.sender, p.timestamp, p.concat.seqnum, p.concat.total) for p in parts] == [
        (PHONE, WHEN, 1, 2), (PHONE, WHEN, 2, 2)]


async def test_listing_and_reading_mark_read_and_deleting_empties_the_sim(modem):
    async with opened(modem.link) as port:
        await ready(port)
        modem.deliver(PHONE, "first")
        modem.deliver(PHONE, "second")
        await port.expect(b'+CMTI: "SM",2\r\n')
        read = await port.answer("AT+CMGR=1")
        assert read.startswith(b"\r\n+CMGR: 0,,") and pdu.decode(
            read.split(b"\r\n")[2].decode()).text == "first"
        assert (await port.answer("AT+CMGR=1")).startswith(b"\r\n+CMGR: 1,,")
        assert (await port.answer("AT+CMGL=0")).count(b"+CMGL: ") == 1  # only "second"
        assert (await port.answer("AT+CMGL=0")).count(b"+CMGL: ") == 0  # now read too
        assert await port.answer("AT+CMGR=31") == b"\r\n+CMS ERROR: 321\r\n"
        assert await port.answer('AT+CPMS="SM","SM","SM"') == (
            b"\r\n+CPMS: 2,30,2,30,2,30\r\n\r\nOK\r\n")
        assert await port.answer("AT+CMGD=1") == b"\r\nOK\r\n"
        assert [s["index"] for s in modem.stored()] == [2]
        assert await port.answer("AT+CMGD=1,4") == b"\r\nOK\r\n"
    assert modem.sim() == []


async def test_a_send_gets_the_prompt_and_answers_its_message_reference(modem):
    async with opened(modem.link) as port:
        await ready(port)
        assert await send(port, submit("Habari 👋🏾")) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
        long_parts = pdu.encode_submit(PHONE, LONG, concat_reference=9)
        for number, part in enumerate(long_parts, start=1):
            assert await send(port, part) == f"\r\n+CMGS: {number}\r\n\r\nOK\r\n".encode()
    sent = modem.sent()
    assert sent[0] == {"mr": 0, "to": PHONE, "text": "Habari 👋🏾", "concat": None, "srr": True}
    assert [(s["mr"], s["concat"]) for s in sent[1:]] == [
        (1, {"reference": 9, "total": 2, "seqnum": 1}),
        (2, {"reference": 9, "total": 2, "seqnum": 2})]


async def test_esc_cancels_a_send_and_a_wrong_length_or_pdu_is_refused(modem):
    async with opened(modem.link) as port:
        await ready(port)
        part = submit("never sent")
        await port.write(f"AT+CMGS={part.length}\r".encode())
        await port.expect(b"> ")
        await port.write(part.hex[:10].encode() + b"\x1b")
        assert await port.expect(FINAL) == b"\r\nOK\r\n"
        await port.write(f"AT+CMGS={part.length + 1}\r".encode())
        await port.expect(b"> ")
        await port.write(part.hex.encode() + b"\x1a")
        assert await port.expect(FINAL) == b"\r\n+CMS ERROR: 304\r\n"
        await port.write(f"AT+CMGS={part.length}\r".encode())
        await port.expect(b"> ")
        await port.write(b"00ZZ" + b"\x1a")
        assert await port.expect(FINAL) == b"\r\n+CMS ERROR: 304\r\n"
        assert await port.answer("AT+CMGS=3") == b"\r\n+CMS ERROR: 304\r\n"
        assert await send(port, part) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"  # nothing used the MR
    assert [s["text"] for s in modem.sent()] == ["never sent"]


async def test_no_network_and_a_failing_network_refuse_sends_with_cms_errors(modem):
    async with opened(modem.link) as port:
        await ready(port)
        modem.network(False)
        assert await send(port, submit("later")) == b"\r\n+CMS ERROR: 331\r\n"
        modem.network(True)
        modem.fail_next_send(38)
        assert await send(port, submit("later")) == b"\r\n+CMS ERROR: 38\r\n"
        assert await send(port, submit("later")) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert len(modem.sent()) == 1


async def test_a_status_report_arrives_as_cds_with_its_pdu(modem):
    async with opened(modem.link) as port:
        await ready(port)
        await send(port, submit("report me", to="+255700000009"))
        modem.report(0, 0x46)
        length, body = (await port.expect(re.compile(rb"\r\n\+CDS: \d+\r\n\w+\r\n"))).split(
            b"\r\n")[1:3]
    report = pdu.decode(body.decode())
    assert isinstance(report, pdu.StatusReport)
    assert (report.reference, report.recipient, report.status, report.state) == (
        0, "+255700000009", 0x46, "failed")
    assert length == f"+CDS: {len(bytes.fromhex(body.decode())) - 8}".encode()


async def test_status_reports_stored_on_the_sim_with_cnmi_ds_2(modem):
    async with opened(modem.link) as port:
        await ready(port)
        await port.answer("AT+CNMI=2,1,0,2,0")
        await send(port, submit("report me"))
        assert modem.report(0, 0) == 1
        assert await port.chunk() == b'\r\n+CDSI: "SM",1\r\n'
    assert isinstance(pdu.decode(modem.sim()[0]), pdu.StatusReport)


async def test_indications_wait_while_a_send_holds_the_line(modem):
    async with opened(modem.link) as port:
        await ready(port)
        part = submit("busy")
        await port.write(f"AT+CMGS={part.length}\r".encode())
        await port.expect(b"> ")
        modem.deliver(PHONE, "while sending")  # answered: the simulator stored it already
        await port.write(part.hex.encode() + b"\x1a")
        assert await port.expect(b'+CMTI: "SM",1\r\n') == (
            b'\r\n+CMGS: 0\r\n\r\nOK\r\n\r\n+CMTI: "SM",1\r\n')


async def test_indications_follow_cnmi_none_before_it_and_buffered_in_mode_0(modem):
    async with opened(modem.link) as port:
        await port.answer("ATE0")
        modem.deliver(PHONE, "before any CNMI")  # mt 0: stored, not announced
        assert await port.answer("AT") == b"\r\nOK\r\n"
        await port.answer("AT+CNMI=0,1,0,0,0")
        modem.deliver(PHONE, "buffered in the modem")
        assert await port.answer("AT") == b"\r\nOK\r\n"
        assert await port.answer("AT+CNMI=2,1,0,0,0") == b"\r\nOK\r\n"
        assert await port.expect(b'+CMTI: "SM",2\r\n') == b'\r\n+CMTI: "SM",2\r\n'
        assert await port.answer("AT+CNMI?") == b"\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    assert len(modem.sim()) == 2


async def test_unplugging_fails_the_open_port_and_plugging_opens_a_new_pty(modem):
    async with opened(modem.link) as port:
        await ready(port)
        modem.unplug()
        assert not modem.link.exists()
        async with asyncio.timeout(DEADLINE):
            try:
                while await port.reader.read(4096):
                    pass  # end of file, after whatever was still buffered
            except OSError:  # serial.SerialException: the read failed (EIO)
                pass
    modem.plug()
    async with opened(modem.link) as port:
        # A power-up: echo is on again and there are no indications until AT+CNMI.
        assert await port.answer("AT") == b"AT\r\r\nOK\r\n"
        await ready(port)
        modem.deliver(PHONE, "back")
        assert await port.chunk() == b'\r\n+CMTI: "SM",1\r\n'


async def test_a_hanging_modem_answers_nothing_until_it_recovers(modem):
    async with opened(modem.link) as port:
        await ready(port)
        modem.hang(True)
        await port.write(b"AT+CSQ\r")
        async with asyncio.timeout(DEADLINE):
            while (await asyncio.to_thread(modem.state))["ignored"] < len(b"AT+CSQ\r"):
                pass  # until the simulator has read the line, and dropped it
        modem.deliver(PHONE, "unannounced")
        modem.hang(False)
        # The next bytes answer ATI: AT+CSQ was never answered, +CMTI never written.
        assert await port.answer("ATI") == (
            b"\r\nManufacturer: smsrouter\r\nModel: simulated E173\r\nRevision: 1\r\n\r\nOK\r\n")


async def test_the_sim_and_the_message_reference_survive_a_restart(tmp_path):
    (tmp_path / "sim.json").write_text(json.dumps({"next_mr": 255}))
    simulator = start(tmp_path)
    modem = next(simulator)
    try:
        async with opened(modem.link) as port:
            await ready(port)
            assert await send(port, submit("a")) == b"\r\n+CMGS: 255\r\n\r\nOK\r\n"
            modem.deliver(PHONE, "kept on the SIM")
    finally:
        simulator.close()
    simulator = start(tmp_path)
    modem = next(simulator)
    try:
        async with opened(modem.link) as port:
            await ready(port)
            assert await send(port, submit("b")) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"  # wrapped
            listed = await port.answer("AT+CMGL=4")
        assert pdu.decode(listed.split(b"\r\n")[2].decode()).text == "kept on the SIM"
        assert [s["mr"] for s in modem.sent()] == [255, 0]
    finally:
        simulator.close()


async def test_the_control_api_says_what_it_cannot_do(modem):
    with pytest.raises(urllib.error.HTTPError) as unknown:
        modem.report(42, 0)
    unknown.value.close()
    assert unknown.value.code == 404
    request = urllib.request.Request(modem.url + "/deliver", data=b'{"text": "no sender"}')
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=DEADLINE)
    with bad.value:
        assert (bad.value.code, bad.value.read()) == (400, b"KeyError: 'from'")
    assert modem.state()["plugged"] is True
