"""A simulated USB GSM modem behind a pseudo-terminal, for the modem bridge's tests.

    python -m tests.modemsim --link PATH --control 127.0.0.1:PORT [--pin 1234] [--sim-file F]

The bridge talks to a serial device, so its tests need something that answers AT commands
on one as a real modem does, and that a test can make misbehave: unplugged, without
network, silent. This is it. It answers as a Huawei E173 or a SIMCom SIM800 does in PDU mode
(3GPP TS 27.005 and 27.007): echo until ATE0; `OK`, or `+CME ERROR: <n>` once AT+CMEE=1
(bare `ERROR` before) and `+CMS ERROR: <n>` for the SMS commands; the PIN, with the SIM
locked after three wrong ones; the `> ` prompt of AT+CMGS, its PDU ended by Ctrl-Z or
cancelled by ESC; and, as AT+CNMI asks, unsolicited `+CMTI: "SM",<index>` and `+CDS:
<length>` lines, several in one write when several arrive at once (a real modem does that,
and a bridge that reads one line per read loses the rest). While a send holds the line,
indications wait, as CNMI mode 2 says, and follow its result. A power-up (/plug) resets
the settings as a real modem does.

PATH is a symlink to the pty's slave, which the bridge opens as its --device. The SIM (its
messages, the next TP-MR, 0 to 255 and round again, its count of wrong PINs, and the sends)
lives in the --sim-file, so a restarted simulator keeps it. PORT 0 picks a free port; the simulator
prints `ready HOST:PORT` once both the pty and the control API are up.

The control API (JSON over HTTP) plays the network and the user:
  POST /deliver {from, text, timestamp?, sixteen_bit?, lost?} -> {indexes}: the SMS (its parts)
       stored on the SIM, one +CMTI each, all in one write;
  GET  /sim -> [{index, stat, pdu}];  GET /sent -> [{mr, to, text, concat, srr}];
  GET  /state -> {sim, sent, pin_attempts, ignored (bytes dropped while hanging), plugged,
       settings};
  POST /report {mr, status}: a status report for that send (TP-ST `status`);
  POST /unplug, /plug: close the pty (the open port fails), open a new one at PATH;
  POST /network {registered, rssi?}; POST /fail_next_send {code}: the next AT+CMGS
       answers +CMS ERROR: <code>; POST /hang {on}: stop answering, and start again.

The `modem` and `modem_with_pin` fixtures start it as a process and hand back a ModemSim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import termios
import tty
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from smsrouter.modem import pdu

CAPACITY = 30  # messages the SIM holds, as a common 32K SIM
CTRL_Z, ESC = 0x1A, 0x1B
#: Commands that need the SIM: before its PIN they answer +CME ERROR: 11.
SIM_COMMANDS = ("AT+CMG", "AT+CNMI", "AT+CPMS", "AT+CSCA", "AT+CNMA")
#: <stat> of a received message in PDU mode (27.005 3.1): unread until AT+CMGL or AT+CMGR.
UNREAD, READ = 0, 1
PIN_TRIES = 3
SERVICE_CENTRE = "+255700000000"
#: Texts of +CME ERROR codes for AT+CMEE=2 (27.007 9.2.1).
CME_TEXTS = {3: "operation not allowed", 4: "operation not supported",
             11: "SIM PIN required", 12: "SIM PUK required", 16: "incorrect password"}


@dataclass
class Settings:
    """What a power-up resets: the defaults of V.250, 27.007 and 27.005."""

    echo: bool = True
    cmee: int = 0
    creg: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)  # mode, mt, bm, ds, bfr


class Refusal(Exception):
    """The final result a command ends with instead of OK."""


class Modem:
    """The modem's state and its AT interpreter, bound to one pty at a time."""

    def __init__(self, link: Path, sim_file: Path, pin: str | None) -> None:
        self.link, self.sim_file, self.pin = link, sim_file, pin
        saved = json.loads(sim_file.read_text()) if sim_file.exists() else {}
        #: index -> {"stat": 0 unread | 1 read, "pdu": hex with the SMSC address}
        self.sim: dict[int, dict[str, Any]] = {
            int(index): stored for index, stored in saved.get("sim", {}).items()}
        self.next_mr: int = saved.get("next_mr", 0)
        self.concat_reference: int = saved.get("concat_reference", 0)
        self.sent: list[dict[str, Any]] = saved.get("sent", [])
        self.pin_attempts = 0  # every AT+CPIN=<pin>, right or wrong, for the tests
        self.wrong_pins: int = saved.get("wrong_pins", 0)  # the SIM counts, across power-ups
        self.registered, self.rssi = True, 21
        self.hanging = False
        self.ignored = 0  # bytes read while hanging, so a test knows they were dropped
        self.fail_next: int | None = None
        self.settings = Settings()
        self.locked = pin is not None
        self.master: int | None = None
        self.slave: int | None = None
        self.buffer = b""
        self.prompt_for: int | None = None  # AT+CMGS's length, while its prompt is open
        self.held: list[str] = []  # indications waiting for the line (CNMI mode 0 or 2)

    # The pty.
    def plug(self) -> None:
        """Power up on a new pty, and point the link at it."""
        if self.master is not None:
            return
        self.master, self.slave = pty.openpty()
        # The simulator keeps the slave open, so that its master never reads EIO while
        # the bridge has the port closed; the bridge sets its own termios when it opens.
        tty.setraw(self.slave, termios.TCSANOW)
        os.set_blocking(self.master, False)
        temporary = self.link.with_name(self.link.name + ".new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(os.ttyname(self.slave))
        temporary.replace(self.link)
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.settings, self.buffer, self.prompt_for, self.held = Settings(), b"", None, []
        self.locked = self.pin is not None

    def unplug(self) -> None:
        """Close the pty: the port the bridge holds fails, and the link goes away."""
        if self.master is None:
            return
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None
        self.link.unlink(missing_ok=True)

    def write(self, text: str) -> None:
        if self.master is None or self.hanging:
            return
        data = text.encode()
        while data:
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                return  # nobody reads: a real modem drops what its buffer cannot hold

    def save(self) -> None:
        self.sim_file.write_text(json.dumps({
            "sim": self.sim, "next_mr": self.next_mr, "sent": self.sent,
            "concat_reference": self.concat_reference, "wrong_pins": self.wrong_pins}))

    # The line.
    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 4096)
        except OSError:
            return
        if self.hanging:
            self.ignored += len(chunk)
            return
        self.buffer += chunk
        while self.buffer:
            if self.prompt_for is not None:
                if not self._take_pdu():
                    return
                continue
            end = self.buffer.find(b"\r")
            if end == -1:
                return
            raw, self.buffer = self.buffer[:end], self.buffer[end + 1:]
            line = raw.decode(errors="replace").strip("\n ")
            if self.settings.echo:
                self.write(line + "\r")
            if line:
                self._run(line)

    def _take_pdu(self) -> bool:
        """The PDU after the prompt, once its Ctrl-Z or ESC came; False until then."""
        end = next((i for i, b in enumerate(self.buffer) if b in (CTRL_Z, ESC)), None)
        if end is None:
            return False
        body, stop, self.buffer = self.buffer[:end], self.buffer[end], self.buffer[end + 1:]
        length, self.prompt_for = self.prompt_for, None
        if self.settings.echo:
            self.write(body.decode(errors="replace"))
        if stop == ESC:
            self._final([], "OK")  # the send cancelled, acknowledged as 27.005 3.5.1 says
        else:
            try:
                self._final(self._submit(length, body.decode(errors="replace").strip()), "OK")
            except Refusal as error:
                self._final([], str(error))
        self._flush_held()
        return True

    def _run(self, line: str) -> None:
        try:
            lines = self._command(line.upper(), line)
        except Refusal as error:
            self._final([], str(error))
        else:
            if lines is not None:
                self._final(lines, "OK")

    def _final(self, lines: list[str], result: str) -> None:
        self.write("".join(f"\r\n{line}" for line in lines) + ("\r\n" if lines else "")
                   + f"\r\n{result}\r\n")

    def _cme(self, code: int) -> Refusal:
        if self.settings.cmee == 0:
            return Refusal("ERROR")
        return Refusal(f"+CME ERROR: {CME_TEXTS[code] if self.settings.cmee == 2 else code}")

    def _command(self, upper: str, line: str) -> list[str] | None:
        """The information lines before OK; None when the answer comes later (the prompt)."""
        name, _, argument = upper.partition("=")
        if self.locked and upper.startswith(SIM_COMMANDS):
            raise self._cme(11)
        if upper in ("AT", "ATZ"):
            if upper == "ATZ":
                self.settings = Settings()
            return []
        if upper in ("ATE", "ATE0", "ATE1"):
            self.settings.echo = upper == "ATE1"
            return []
        if upper == "ATI":
            return ["Manufacturer: smsrouter", "Model: simulated E173", "Revision: 1"]
        if name == "AT+CMEE" and argument in ("0", "1", "2"):
            self.settings.cmee = int(argument)
            return []
        if upper == "AT+CMEE?":
            return [f"+CMEE: {self.settings.cmee}"]
        if upper == "AT+CPIN?":
            return [f"+CPIN: {self._pin_state()}"]
        if name == "AT+CPIN" and argument:
            return self._unlock(line.partition("=")[2].strip().strip('"'))
        if upper == "AT+CSQ":
            return [f"+CSQ: {self.rssi},99"]
        if upper == "AT+CREG?":
            return [f"+CREG: {self.settings.creg},{self._stat()}{self._cell()}"]
        if name == "AT+CREG" and argument in ("0", "1", "2"):
            self.settings.creg = int(argument)
            return []
        if name == "AT+CMGF":
            if argument != "0":  # text mode is not simulated
                raise Refusal("+CMS ERROR: 303")
            return []
        if upper == "AT+CMGF?":
            return ["+CMGF: 0"]
        if name == "AT+CNMI":
            return self._indications(argument)
        if upper == "AT+CNMI?":
            return ["+CNMI: " + ",".join(map(str, self.settings.cnmi))]
        if name == "AT+CPMS":
            if any(memory.strip('"') != "SM" for memory in argument.split(",")):
                raise Refusal("+CMS ERROR: 302")
            used = len(self.sim)
            return [f"+CPMS: {used},{CAPACITY},{used},{CAPACITY},{used},{CAPACITY}"]
        if upper == "AT+CPMS?":
            used = len(self.sim)
            return ["+CPMS: " + ",".join([f'"SM",{used},{CAPACITY}'] * 3)]
        if upper == "AT+CSCA?":
            return [f'+CSCA: "{SERVICE_CENTRE}",145']
        if name == "AT+CMGL":
            return self._list(argument or "0")
        if name == "AT+CMGR":
            return self._read(self._index(argument))
        if name == "AT+CMGD":
            return self._delete(argument)
        if name == "AT+CMGS":
            if not argument.isdigit() or not 7 <= int(argument) <= 164:
                raise Refusal("+CMS ERROR: 304")
            self.prompt_for = int(argument)
            self.write("\r\n> ")
            return None
        raise Refusal("ERROR")

    def _pin_state(self) -> str:
        if not self.locked:
            return "READY"
        return "SIM PUK" if self.wrong_pins >= PIN_TRIES else "SIM PIN"

    def _unlock(self, given: str) -> list[str]:
        if not self.locked:
            raise self._cme(3)
        if self.wrong_pins >= PIN_TRIES:
            raise self._cme(12)
        self.pin_attempts += 1
        if given != self.pin:
            self.wrong_pins += 1
            self.save()
            raise self._cme(16)
        self.locked, self.wrong_pins = False, 0
        self.save()
        return []

    def _stat(self) -> int:
        """27.007 7.2 <stat>: 1 registered on the home network, 0 not and not searching."""
        return 1 if self.registered else 0

    def _cell(self) -> str:
        return ',"00A1","1B2C"' if self.settings.creg == 2 and self.registered else ""

    def _indications(self, argument: str) -> list[str]:
        values = argument.split(",")
        if not argument or len(values) > 5 or not all(v.isdigit() for v in values):
            raise Refusal("+CMS ERROR: 304")
        mode, mt, bm, ds, bfr = [int(v) for v in values] + list(
            self.settings.cnmi[len(values):])
        if mode > 3 or mt > 1 or bm != 0 or ds > 2 or bfr > 1:
            raise Refusal("+CMS ERROR: 303")  # direct routing (+CMT, mt 2-3) not simulated
        self.settings.cnmi = (mode, mt, bm, ds, bfr)
        if mode and bfr == 1:
            self.held = []
        if mode:  # bfr 0: the buffered codes follow the OK
            asyncio.get_running_loop().call_soon(self._flush_held)
        return []

    def _index(self, argument: str) -> int:
        if not argument.isdigit() or not 1 <= int(argument) <= CAPACITY:
            raise Refusal("+CMS ERROR: 321")
        return int(argument)

    def _list(self, argument: str) -> list[str]:
        if argument not in ("0", "1", "2", "3", "4"):
            raise Refusal("+CMS ERROR: 302")
        wanted = int(argument)
        lines = []
        for index in sorted(self.sim):
            stored = self.sim[index]
            if wanted == 4 or stored["stat"] == wanted:
                lines += [f"+CMGL: {index},{stored['stat']},,{tpdu_length(stored['pdu'])}",
                          stored["pdu"]]
                stored["stat"] = READ
        self.save()
        return lines

    def _read(self, index: int) -> list[str]:
        stored = self.sim.get(index)
        if stored is None:
            return []  # an empty slot: OK and nothing, as a SIM800 answers
        lines = [f"+CMGR: {stored['stat']},,{tpdu_length(stored['pdu'])}", stored["pdu"]]
        stored["stat"] = READ
        self.save()
        return lines

    def _delete(self, argument: str) -> list[str]:
        index, _, flag = argument.partition(",")
        flag = flag or "0"
        if flag not in ("0", "1", "2", "3", "4"):
            raise Refusal("+CMS ERROR: 302")
        if flag == "0":
            self.sim.pop(self._index(index), None)
        else:  # 1-3 delete every read message (there are no stored sends here), 4 all
            self.sim = {i: s for i, s in self.sim.items() if flag != "4" and s["stat"] != READ}
        self.save()
        return []

    def _submit(self, length: int, hex_pdu: str) -> list[str]:
        if not self.registered:
            raise Refusal("+CMS ERROR: 331")
        if self.fail_next is not None:
            code, self.fail_next = self.fail_next, None
            raise Refusal(f"+CMS ERROR: {code}")
        try:
            submit = pdu.decode(hex_pdu)
            given = tpdu_length(hex_pdu)
        except ValueError:  # PduError, or what is no hex at all
            raise Refusal("+CMS ERROR: 304") from None
        if not isinstance(submit, pdu.Submit) or given != length:
            raise Refusal("+CMS ERROR: 304")
        mr, self.next_mr = self.next_mr, (self.next_mr + 1) % 256
        concat = submit.concat and asdict(submit.concat)
        self.sent.append({"mr": mr, "to": submit.recipient, "text": submit.text,
                          "concat": concat, "srr": submit.status_report})
        self.save()
        return [f"+CMGS: {mr}"]

    # Unsolicited result codes.
    def _indicate(self, codes: list[str]) -> None:
        """Write `codes` together now, or hold them while the line is busy (mode 2) or
        while CNMI mode 0 buffers them in the modem."""
        mode = self.settings.cnmi[0]
        if mode == 0 or (self.prompt_for is not None and mode != 1):
            self.held += codes
        elif self.prompt_for is None:
            self.write("".join(codes))
        # mode 1 while the line is busy: discarded, as 27.005 3.4.1 allows

    def _flush_held(self) -> None:
        if self.held and self.settings.cnmi[0] and self.prompt_for is None:
            codes, self.held = self.held, []
            self.write("".join(codes))

    # The network.
    def deliver(self, sender: str, text: str, when: datetime, sixteen_bit: bool,
                lost: bool = False) -> list[int]:
        self.concat_reference = (self.concat_reference + 1) % 65536
        pdus = pdu.encode_deliver(sender, text, when, concat_reference=self.concat_reference,
                                  sixteen_bit=sixteen_bit)
        free = [i for i in range(1, CAPACITY + 1) if i not in self.sim]
        if len(free) < len(pdus):
            raise web.HTTPConflict(text="the SIM is full")
        indexes = free[:len(pdus)]
        for index, hex_pdu in zip(indexes, pdus):
            self.sim[index] = {"stat": UNREAD, "pdu": hex_pdu}
        self.save()
        if self.settings.cnmi[1] == 1 and not lost:  # lost: as a modem now and then drops one
            self._indicate([f'\r\n+CMTI: "SM",{index}\r\n' for index in indexes])
        return indexes

    def report(self, mr: int, status: int) -> int | None:
        """A status report for the last send with TP-MR `mr`: announced with +CDS (CNMI
        ds 1), or stored on the SIM and announced with +CDSI (ds 2); its index then."""
        sent = next((s for s in reversed(self.sent) if s["mr"] == mr), None)
        if sent is None:
            raise web.HTTPNotFound(text=f"no send had TP-MR {mr}")
        hex_pdu = pdu.encode_status_report(mr, sent["to"], status,
                                           datetime.now(timezone.utc).replace(microsecond=0))
        ds = self.settings.cnmi[3]
        if ds == 1:
            self._indicate([f"\r\n+CDS: {tpdu_length(hex_pdu)}\r\n{hex_pdu}\r\n"])
        elif ds == 2:
            free = [i for i in range(1, CAPACITY + 1) if i not in self.sim]
            if not free:
                raise web.HTTPConflict(text="the SIM is full")
            self.sim[free[0]] = {"stat": UNREAD, "pdu": hex_pdu}
            self.save()
            self._indicate([f'\r\n+CDSI: "SM",{free[0]}\r\n'])
            return free[0]
        return None

    def set_network(self, registered: bool, rssi: int | None) -> None:
        changed = registered != self.registered
        self.registered = registered
        if rssi is not None:
            self.rssi = rssi
        if changed and self.settings.creg and self.prompt_for is None:
            self.write(f"\r\n+CREG: {self._stat()}{self._cell()}\r\n")


def tpdu_length(hex_pdu: str) -> int:
    """The <length> 27.005 gives for a PDU: its octets after the service centre's address."""
    if len(hex_pdu) % 2:
        raise ValueError("an odd number of hex digits")
    return len(bytes.fromhex(hex_pdu)) - 1 - int(hex_pdu[:2], 16)


@web.middleware
async def bad_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """A body the API cannot use is the test's mistake: a 400 that says which."""
    try:
        return await handler(request)
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"{type(exc).__name__}: {exc}") from exc


def control(modem: Modem) -> web.Application:
    """The control API over `modem`, as the module docstring lists it."""

    async def deliver(request: web.Request) -> web.Response:
        body = await request.json()
        when = datetime.fromisoformat(body["timestamp"]) if body.get("timestamp") else (
            datetime.now(timezone.utc).replace(microsecond=0))
        indexes = modem.deliver(body["from"], body["text"], when, body.get("sixteen_bit", False),
                                body.get("lost", False))
        return web.json_response({"indexes": indexes})

    async def report(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"index": modem.report(int(body["mr"]), int(body["status"]))})

    async def sim(request: web.Request) -> web.Response:
        return web.json_response([{"index": index, **modem.sim[index]}
                                  for index in sorted(modem.sim)])

    async def sent(request: web.Request) -> web.Response:
        return web.json_response(modem.sent)

    async def state(request: web.Request) -> web.Response:
        return web.json_response({
            "sim": {str(index): stored for index, stored in modem.sim.items()},
            "sent": modem.sent, "pin_attempts": modem.pin_attempts, "ignored": modem.ignored,
            "plugged": modem.master is not None, "settings": asdict(modem.settings)})

    async def setting(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        action = request.match_info["action"]
        if action == "unplug":
            modem.unplug()
        elif action == "plug":
            modem.plug()
        elif action == "network":
            modem.set_network(bool(body["registered"]), body.get("rssi"))
        elif action == "fail_next_send":
            modem.fail_next = int(body["code"])
        elif action == "hang":
            modem.hanging = bool(body["on"])
        else:
            raise web.HTTPNotFound(text=f"no control /{action}")
        return web.json_response({})

    app = web.Application(middlewares=[bad_requests])
    app.router.add_post("/deliver", deliver)
    app.router.add_post("/report", report)
    app.router.add_get("/sim", sim)
    app.router.add_get("/sent", sent)
    app.router.add_get("/state", state)
    app.router.add_post("/{action}", setting)
    return app


async def main(options: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT, then take the link away."""
    modem = Modem(options.link, options.sim_file, options.pin)
    modem.plug()
    runner = web.AppRunner(control(modem), access_log=None)
    await runner.setup()
    host, port = options.control.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    bound = runner.addresses[0]  # with the port picked when PORT was 0
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)
    print(f"ready {bound[0]}:{bound[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        modem.unplug()
        await runner.cleanup()


# The client and the fixtures.
class ModemSim:
    """The test's handle on a running simulator: its device path and its control API."""

    def __init__(self, link: Path, url: str, process: subprocess.Popen[str]) -> None:
        self.link, self.url, self.process = link, url, process

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data,
                                         method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def deliver(self, sender: str, text: str, **options: Any) -> list[int]:
        """Put an SMS on the SIM; options: timestamp (ISO 8601), sixteen_bit, lost (no
        +CMTI for it)."""
        return self._call("/deliver", {"from": sender, "text": text, **options})["indexes"]

    def sim(self) -> list[str]:
        """The PDUs on the SIM, by index."""
        return [stored["pdu"] for stored in self._call("/sim")]

    def stored(self) -> list[dict[str, Any]]:
        """The SIM's messages with their index and stat (0 unread, 1 read)."""
        return self._call("/sim")

    def sent(self) -> list[dict[str, Any]]:
        return self._call("/sent")

    def state(self) -> dict[str, Any]:
        return self._call("/state")

    def pin_attempts(self) -> int:
        return self._call("/state")["pin_attempts"]

    def report(self, mr: int, status: int) -> int | None:
        return self._call("/report", {"mr": mr, "status": status})["index"]

    def unplug(self) -> None:
        self._call("/unplug", {})

    def plug(self) -> None:
        self._call("/plug", {})

    def network(self, registered: bool, rssi: int | None = None) -> None:
        self._call("/network", {"registered": registered, "rssi": rssi})

    def fail_next_send(self, code: int) -> None:
        self._call("/fail_next_send", {"code": code})

    def hang(self, on: bool) -> None:
        self._call("/hang", {"on": on})


def start(tmp_path: Path, *options: str) -> Iterator[ModemSim]:
    """The simulator as a process, once it says it is ready (within 20 s); stopped after."""
    link = tmp_path / "ttyMODEM"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.modemsim", "--link", str(link),
         "--control", "127.0.0.1:0", "--sim-file", str(tmp_path / "sim.json"), *options],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = process.stdout.readline().split() if selector.select(timeout=20) else []
        if ready[:1] != ["ready"]:
            pytest.fail(f"the simulated modem did not start (exit {process.poll()})")
        yield ModemSim(link, f"http://{ready[1]}", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture
def modem(tmp_path: Path) -> Iterator[ModemSim]:
    """A simulated modem whose SIM asks for no PIN."""
    yield from start(tmp_path)


@pytest.fixture
def modem_with_pin(tmp_path: Path) -> Iterator[ModemSim]:
    """A simulated modem whose SIM asks for the PIN 1234."""
    yield from start(tmp_path, "--pin", "1234")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A simulated GSM modem on a pty.")
    parser.add_argument("--link", type=Path, required=True)
    parser.add_argument("--control", required=True, help="HOST:PORT; PORT 0 picks one")
    parser.add_argument("--pin")
    parser.add_argument("--sim-file", type=Path, required=True)
    asyncio.run(main(parser.parse_args()))
