"""A fake SMSC on loopback that speaks real SMPP 3.4, for the SMPP backend's tests.

In-process: `smsc = FakeSmsc(); await smsc.start()`, then `smsc.port`, the queues
`smsc.binds`, `smsc.submits` and `smsc.answers`, and `deliver()`, `receipt()`, `drop()`;
`throttle`, `refuse_binds` and `corrupt` to misbehave, `hold()` and `release()` to answer
late (a slow or hung SMSC), and `raw()` to send octets that are no PDU (`with_length()`
makes a body lie with a header that does not).

As a process: `python -m tests.smsc [--port N]` prints `{"port": N}`, then one JSON
object per event (`bound`, `submit`) on stdout, and takes JSON commands on stdin:
`{"deliver": {"source": "+2557...", "text": "..."}}`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from smsrouter.smpp import pdu
from smsrouter.smpp.pdu import Command, Pdu

BINDS = {Command.BIND_TRANSCEIVER, Command.BIND_TRANSMITTER, Command.BIND_RECEIVER}


def with_length(data: bytes) -> bytes:
    """The octets with command_length set to their number, so that only the body lies."""
    return len(data).to_bytes(4, "big") + data[4:]


@dataclass
class Submitted:
    """One submit_sm as the SMSC took it: its text (a part's, for a long one) and id."""

    message_id: str
    destination: str
    text: str
    pdu: Pdu
    udh: tuple[int, int, int] | None


class FakeSmsc:
    """Accepts binds with the right system_id and password, answers submit_sm with ids."""

    def __init__(self, system_id: str = "smsrouter", password: str = "secret") -> None:
        self.system_id, self.password = system_id, password
        self.port = 0
        #: The system_id of each accepted bind, as it happens.
        self.binds: asyncio.Queue[str] = asyncio.Queue()
        #: Each accepted submit_sm, as it happens; `submitted` keeps them all.
        self.submits: asyncio.Queue[Submitted] = asyncio.Queue()
        self.submitted: list[Submitted] = []
        #: The ESME's answers to what this SMSC sent (deliver_sm_resp, generic_nack,
        #: enquire_link_resp), as they come.
        self.answers: asyncio.Queue[Pdu] = asyncio.Queue()
        #: Answer the next this many submit_sm with ESME_RTHROTTLED.
        self.throttle = 0
        #: Refuse binds (ESME_RBINDFAIL) while set, as an SMSC in maintenance does.
        self.refuse_binds = False
        #: Sends the next submit_sm_resp's octets through this, to answer it malformed.
        self.corrupt: Callable[[bytes], bytes] | None = None
        #: Give message ids in decimal, not hex, as some SMSCs do.
        self.decimal_ids = False
        #: The commands whose answers are held back until `release()`.
        self.holding: set[Command] = set()
        #: Each request whose answer is held, as it comes.
        self.held: asyncio.Queue[Pdu] = asyncio.Queue()
        self._held: list[tuple[asyncio.StreamWriter, bytes]] = []
        self._ids = itertools.count(0x1000)
        self._sequence = itertools.count(1)
        self._sessions: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        """Close every connection at once, without an unbind: a link that fails. Answers
        held back are never sent."""
        for writer in self._sessions:
            writer.close()
        self._sessions.clear()
        self._held.clear()

    def hold(self, *commands: Command) -> None:
        """Hold back the answers to these commands (the request itself is taken: a
        submit_sm is in `submitted`) until `release()`."""
        self.holding.update(commands)

    def release(self) -> None:
        """Send the answers held back, in order, and hold no more."""
        self.holding.clear()
        for writer, octets in self._held:
            if not writer.is_closing():
                writer.write(octets)
        self._held.clear()

    def texts(self) -> list[str]:
        """The texts submitted so far, long ones put back together."""
        texts: list[str] = []
        parts: dict[tuple[str, int], list[str]] = {}
        for sub in self.submitted:
            if sub.udh is None:
                texts.append(sub.text)
                continue
            reference, total, _ = sub.udh
            parts.setdefault((sub.destination, reference), []).append(sub.text)
            if len(parts[(sub.destination, reference)]) == total:
                texts.append("".join(parts.pop((sub.destination, reference))))
        return texts

    def deliver(self, source: str, text: str, destination: str = "15555") -> None:
        """A mobile-originated text to every bound ESME, in parts with a UDH if long."""
        international = source.startswith("+")
        for part in pdu.submit_parts(text, next(self._ids)):
            part.command_id = Command.DELIVER_SM
            part.fields.update(source_addr=source.removeprefix("+"),
                               source_addr_ton=1 if international else 0, source_addr_npi=1,
                               destination_addr=destination)
            self._send(part)

    def receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000") -> None:
        """A delivery receipt (esm_class 0x04) for a message this SMSC took."""
        text = pdu.receipt_text(message_id, stat, err)
        self._send(Pdu(Command.DELIVER_SM, fields={
            "esm_class": pdu.ESM_RECEIPT, "short_message": text.encode("ascii")}))

    def enquire_link(self, sequence: int) -> None:
        """An enquire_link with this sequence_number, to tell its answer from the others'."""
        self.raw(Pdu(Command.ENQUIRE_LINK, sequence).encode())

    def raw(self, data: bytes) -> None:
        """Octets to every bound ESME as they are: malformed PDUs, lying lengths."""
        for writer in self._sessions:
            writer.write(data)

    def _send(self, request: Pdu) -> None:
        request.sequence_number = next(self._sequence)
        for writer in self._sessions:
            writer.write(request.encode())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(pdu.HEADER_SIZE)
                length = pdu.HEADER.unpack(header)[0]
                request = Pdu.decode(header + await reader.readexactly(length - pdu.HEADER_SIZE))
                if reply := self._answer(request, writer):
                    octets = reply.encode()
                    if self.corrupt and reply.command_id == Command.SUBMIT_SM_RESP:
                        octets, self.corrupt = self.corrupt(octets), None
                    if request.command_id in self.holding:
                        self._held.append((writer, octets))
                        self.held.put_nowait(request)
                    else:
                        writer.write(octets)
                if request.command_id == Command.UNBIND:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._sessions.discard(writer)
            writer.close()

    def _answer(self, request: Pdu, writer: asyncio.StreamWriter) -> Pdu | None:
        if request.command_id in BINDS:
            if self.refuse_binds:
                return request.response(pdu.ESME_RBINDFAIL)
            if request.get_str("system_id") != self.system_id:
                return request.response(pdu.ESME_RINVSYSID)
            if request.get_str("password") != self.password:
                return request.response(pdu.ESME_RINVPASWD)
            self._sessions.add(writer)
            self.binds.put_nowait(request.get_str("system_id"))
            return request.response(system_id="fakesmsc")
        if request.command_id == Command.SUBMIT_SM:
            if self.throttle:
                self.throttle -= 1
                return request.response(pdu.ESME_RTHROTTLED)
            message_id = f"{next(self._ids):{'d' if self.decimal_ids else 'x'}}"
            octets = request.get_bytes("short_message")
            udh = None
            if request.get_int("esm_class") & pdu.ESM_UDHI:
                udh, octets = pdu.split_udh(octets)
            sub = Submitted(message_id, request.get_str("destination_addr"),
                            pdu.decode_text(octets, request.get_int("data_coding")), request, udh)
            self.submitted.append(sub)
            self.submits.put_nowait(sub)
            return request.response(message_id=message_id)
        if request.is_response:
            self.answers.put_nowait(request)
            return None
        return request.response()  # enquire_link, unbind


async def main(port: int, system_id: str, password: str) -> None:
    """The SMSC as a process: JSON events on stdout, JSON commands on stdin."""
    smsc = FakeSmsc(system_id, password)
    print(json.dumps({"port": await smsc.start(port)}), flush=True)

    async def report_binds() -> None:
        while True:
            print(json.dumps({"bound": await smsc.binds.get()}), flush=True)

    async def report_submits() -> None:
        while True:
            sub = await smsc.submits.get()
            print(json.dumps({"submit": {"destination": sub.destination, "text": sub.text,
                                         "id": sub.message_id}}), flush=True)

    reporting = [asyncio.create_task(report_binds()), asyncio.create_task(report_submits())]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        command = json.loads(line)
        if "deliver" in command:
            smsc.deliver(command["deliver"]["source"], command["deliver"]["text"])
    for task in reporting:
        task.cancel()
    await smsc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--system-id", default="smsrouter")
    parser.add_argument("--password", default="secret")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.system_id, arguments.password))
