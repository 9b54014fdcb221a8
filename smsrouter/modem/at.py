"""The AT command channel to a GSM modem (3GPP TS 27.007 and 27.005) over a byte stream.

A modem interleaves two things on one serial line: the answer to the command in hand
(lines, then OK or an error) and unsolicited result codes (+CMTI for a stored SMS, +CDS
with a status report's PDU on the next line) that may arrive at any moment, several in
one read. One reader task splits the stream into lines and sorts them, so that no
indication is lost because a command was waiting, and a lock keeps one command in flight.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

CTRL_Z, ESC = b"\x1a", b"\x1b"
#: Unsolicited result codes the bridge acts on; a second line (the PDU) follows +CDS and +CMT.
WITH_PDU = ("+CDS:", "+CMT:")
UNSOLICITED = ("+CMTI:", "+CDSI:", *WITH_PDU, "RING", "+CREG:", "^", "+CUSD:")
FINAL_OK = "OK"
ERROR = re.compile(r"^(?:\+(CME|CMS) ERROR: ?(.*)|ERROR|NO CARRIER|COMMAND NOT SUPPORT)$")
#: Texts of the +CME/+CMS ERROR codes a user meets most (27.007 9.2, 27.005 3.2.5).
ERROR_TEXTS = {
    ("CME", 10): "SIM not inserted", ("CME", 11): "SIM PIN required",
    ("CME", 12): "SIM PUK required", ("CME", 13): "SIM failure", ("CME", 14): "SIM busy",
    ("CME", 16): "incorrect password", ("CME", 30): "no network service",
    ("CMS", 38): "network out of order", ("CMS", 41): "temporary failure",
    ("CMS", 42): "congestion", ("CMS", 47): "resources unavailable",
    ("CMS", 304): "invalid PDU mode parameter", ("CMS", 305): "invalid text mode parameter",
    ("CMS", 310): "SIM not inserted", ("CMS", 311): "SIM PIN required",
    ("CMS", 321): "invalid memory index", ("CMS", 322): "SIM memory full",
    ("CMS", 330): "SMSC address unknown", ("CMS", 331): "no network service",
    ("CMS", 332): "network timeout", ("CMS", 500): "unknown error",
}
#: +CMS ERROR codes after which the same SMS may go through later: the network, not the
#: message, is at fault (27.005 3.2.5; 24.011 annex E for those under 128).
TEMPORARY_CMS = frozenset({38, 41, 42, 47, 331, 332, 500, 512, 513, 514, 515})


class ModemGone(ConnectionError):
    """The serial port closed or failed: the modem was unplugged, or stopped answering."""


class Unconfirmed(TimeoutError):
    """An SMS was handed to the modem and no +CMGS answer came: it may have gone."""


@dataclass
class AtError(Exception):
    """The modem answered ERROR, +CME ERROR or +CMS ERROR to `command`."""

    command: str
    kind: str  # "CME", "CMS", or "" for a bare ERROR
    code: int | None
    raw: str

    def __str__(self) -> str:
        if self.code is None:
            return f"{self.command}: {self.raw}"
        text = ERROR_TEXTS.get((self.kind, self.code))
        detail = f" ({text})" if text else ""
        return f"{self.command}: +{self.kind} ERROR: {self.code}{detail}"

    @property
    def temporary(self) -> bool:
        """Whether a later attempt may succeed (a network fault, not a bad message)."""
        return self.kind == "CMS" and self.code in TEMPORARY_CMS


@dataclass(frozen=True)
class Unsolicited:
    """An unsolicited result code: its line, and for +CDS and +CMT the PDU that followed."""

    line: str
    pdu: str | None = None


def parse_error(command: str, line: str) -> AtError | None:
    """The AtError a final line means, or None when it is no error."""
    match = ERROR.match(line)
    if match is None:
        return None
    kind, value = match.group(1) or "", (match.group(2) or "").strip()
    code = int(value) if value.isdigit() else None
    return AtError(command, kind, code, line)


class AtChannel:
    """Commands and their answers, and unsolicited codes handed to `on_unsolicited`.

    `reader` and `writer` are an asyncio stream pair (serial_asyncio_fast's, or a test's).
    Once the stream ends or fails, every waiting and later command raises ModemGone, and
    `closed` is set, so that the bridge reopens the port. A command the modem does not
    answer in time closes the channel too: a late answer would be taken for the next one's.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_unsolicited: Callable[[Unsolicited], None], timeout: float = 10) -> None:
        self.reader, self.writer = reader, writer
        self.on_unsolicited = on_unsolicited
        self.timeout = timeout
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._prompt = asyncio.Event()
        self._pending_pdu: str | None = None  # an unsolicited line whose PDU is next
        self._command = ""
        self._task = asyncio.create_task(self._read(), name="at-reader")

    async def command(self, command: str, timeout: float | None = None) -> list[str]:
        """Send `command` and return the answer's lines before OK; AtError for an error
        answer, TimeoutError when none comes in `timeout` seconds, ModemGone when the port
        went away."""
        async with self._lock:
            self._start(command)
            try:
                self._write(command.encode() + b"\r")
                return await self._answer(command, timeout)
            finally:
                self._command = ""

    async def submit(self, length: int, pdu: str, timeout: float = 60) -> list[str]:
        """AT+CMGS=<length>, the PDU after the "> " prompt, ended by Ctrl-Z: the answer's
        lines (+CMGS: <mr>). ESC cancels the send when no prompt comes (TimeoutError: not
        sent); Unconfirmed when the PDU was written and no answer followed."""
        command = f"AT+CMGS={length}"
        async with self._lock:
            self._start(command)
            try:
                self._write(command.encode() + b"\r")
                try:
                    await self._wait(self._prompt.wait(), self.timeout)
                except TimeoutError:
                    self._write(ESC)
                    raise
                self._write(pdu.encode() + CTRL_Z)
                try:
                    return await self._answer(command, timeout)
                except (TimeoutError, ModemGone) as exc:
                    raise Unconfirmed(f"{exc}, after the SMS was handed over") from exc
            finally:
                self._command = ""

    async def close(self) -> None:
        """Stop reading and close the port."""
        self._task.cancel()
        self.writer.close()
        self.closed.set()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass

    def _start(self, command: str) -> None:
        if self.closed.is_set():
            raise ModemGone("the serial port is closed")
        self._command = command
        self._prompt.clear()
        while not self._lines.empty():  # a late answer to a command that timed out
            logger.debug("modem: dropped stray line %r", self._lines.get_nowait())

    def _write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as exc:
            self.closed.set()
            raise ModemGone(f"cannot write to the serial port: {exc}") from exc

    async def _answer(self, command: str, timeout: float | None) -> list[str]:
        lines: list[str] = []
        while True:
            line = await self._wait(self._lines.get(), timeout or self.timeout)
            if line == FINAL_OK:
                return lines
            if (error := parse_error(command, line)) is not None:
                raise error
            if line != command:  # the echo, before ATE0 turned it off
                lines.append(line)

    async def _wait(self, awaitable: Awaitable[T], timeout: float) -> T:
        """`awaitable`, unless the port goes away or `timeout` passes first."""
        waiter = asyncio.ensure_future(awaitable)
        gone = asyncio.ensure_future(self.closed.wait())
        try:
            done, _ = await asyncio.wait({waiter, gone}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        if gone in done:
            raise ModemGone(f"the serial port went away during {self._command}")
        # Its late answer could be taken for the next command's: the channel is done.
        self.closed.set()
        raise TimeoutError(f"no answer to {self._command} in {timeout:g} s")

    async def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = await self.reader.read(4096)
                if not chunk:
                    break
                *lines, buffer = (buffer + chunk).split(b"\n")
                for raw in lines:
                    self._line(raw.strip(b"\r ").decode("ascii", "replace"))
                if buffer.lstrip(b"\r").startswith(b">"):  # the +CMGS prompt ends no line
                    buffer = b""
                    self._prompt.set()
        except (OSError, asyncio.IncompleteReadError) as exc:
            logger.warning("modem: the serial port failed: %s", exc)
        finally:
            self.closed.set()

    def _line(self, line: str) -> None:
        if not line:
            return
        if self._pending_pdu is not None:
            unsolicited, self._pending_pdu = Unsolicited(self._pending_pdu, line), None
            self.on_unsolicited(unsolicited)
        elif line.startswith(WITH_PDU):
            self._pending_pdu = line
        elif line.startswith(UNSOLICITED) and not self._answers(line):
            self.on_unsolicited(Unsolicited(line))
        else:
            self._lines.put_nowait(line)

    def _answers(self, line: str) -> bool:
        """Whether `line` answers the command in hand (AT+CREG? is answered by +CREG:)."""
        name = line.split(":", 1)[0]
        return bool(self._command) and self._command.upper().startswith("AT" + name)
