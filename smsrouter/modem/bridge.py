"""One GSM modem between its serial port and the router's HTTP backend, in one event loop.

The seed's answer to a device that cannot live in a web request: a small process that
owns the modem and speaks HTTP to smsrouter. Three things run side by side and share
only the spool:

- the modem session: open the port, set the modem up (echo off, numeric errors, PIN, PDU
  mode, indications), sweep the SIM, then read each SMS the modem announces and poll the
  signal and registration, which also notices a modem that stopped answering. Any failure
  closes the port and opens it again after a backoff; a wrong PIN ends the process, as
  trying again would lock the SIM;
- the poster: every message and report in the spool goes to the router until it answers
  2xx, with backoff while it does not; only then is the SMS deleted from the SIM;
- the HTTP endpoint (smsrouter.modem.http): /send and /health.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import serial_asyncio_fast

from smsrouter.modem import pdu
from smsrouter.modem.at import AtChannel, AtError, ModemGone, Unconfirmed, Unsolicited
from smsrouter.modem.spool import Spool

logger = logging.getLogger("smsrouter.modem")

#: AT+CNMI=2,1,0,1,0: +CMTI for each SMS stored on the SIM, +CDS for each status report.
INDICATIONS = "AT+CNMI=2,1,0,1,0"
#: Seconds between polls while the modem has no network (Config.poll otherwise), so that
#: sends resume soon after it is back.
POLL_UNREGISTERED = 2
#: +CMS ERROR: 331, no network service: the modem has lost its network.
NO_NETWORK = 331
#: +CREG stat values of a registered modem: 1 home network, 5 roaming.
REGISTERED = {1: "home", 5: "roaming"}
NOT_REGISTERED = {0: "not searching", 2: "searching", 3: "registration denied", 4: "unknown"}


class FatalModemError(Exception):
    """The modem cannot be used and trying again would make it worse (a wrong PIN)."""


@dataclass
class Refused(Exception):
    """A send the modem did not take; `temporary` when a later attempt may succeed."""

    reason: str
    temporary: bool

    def __str__(self) -> str:
        return self.reason


@dataclass
class Config:
    """The command line's options."""

    device: str
    router_url: str
    token: str
    baud: int = 115200
    pin: str | None = None
    listen: tuple[str, int] = ("127.0.0.1", 8765)
    spool: Path = Path("smsrouter-modem-spool.json")
    #: Seconds the modem has to answer a command; a silent modem is opened again.
    timeout: float = 10.0
    #: Seconds between polls of the signal, the registration and the SIM, which double as
    #: the modem's heartbeat.
    poll: float = 15.0
    #: The longest wait between attempts to reopen the port or to reach the router.
    max_backoff: float = 30.0


@dataclass
class Health:
    """What /health shows."""

    modem: str = "opening"
    error: str = ""
    rssi: int | None = None
    registration: str = "unknown"
    registered: bool = False
    sent: int = 0
    received: int = 0

    def as_json(self, spool: Spool) -> dict[str, Any]:
        dbm = None if self.rssi in (None, 99) else -113 + 2 * self.rssi
        return {"modem": self.modem, "error": self.error,
                "signal": {"rssi": self.rssi, "dbm": dbm},
                "registered": self.registered, "registration": self.registration,
                "sent": self.sent, "received": self.received,
                "spool": {"inbound": len(spool.inbound), "reports": len(spool.reports)}}


def stable_id(message: pdu.Deliver, index: int) -> str:
    """The router's dedup key for an SMS: the same for every reading of it from the SIM.

    The sender, the service centre's timestamp, the part's place and the PDU itself tell
    two SMS apart; the SMS's place on the SIM tells apart two identical texts from one
    sender within the same second (the timestamp's resolution), which have the same PDU.
    """
    concat = message.concat
    place = f"{concat.reference}/{concat.total}/{concat.seqnum}" if concat else ""
    key = "|".join([message.sender, message.timestamp.isoformat(), place, str(index),
                    message.pdu.upper()])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def backoff(attempt: int, ceiling: float) -> float:
    """Seconds to wait before attempt `attempt` (from 1): doubling from 0.5, jittered."""
    return min(ceiling, 0.5 * 2 ** min(attempt - 1, 16)) * random.uniform(0.8, 1.0)


@dataclass
class Bridge:
    """The modem session, the poster and the state they share."""

    config: Config
    health: Health = field(default_factory=Health)

    def __post_init__(self) -> None:
        self.spool = Spool(self.config.spool)
        self.channel: AtChannel | None = None
        #: SIM indexes of spooled messages, to delete once the router has them; only for
        #: the session that read them, as an index means nothing after the port reopened.
        self._on_sim: dict[str, tuple[AtChannel, int]] = {}
        self._indexes: asyncio.Queue[int] = asyncio.Queue()
        self._wake_poster = asyncio.Event()
        self._sending = asyncio.Lock()
        self._poll_soon = asyncio.Event()

    # The modem session.
    async def keep_modem(self) -> None:
        """Open the modem and serve it, again and again, until a fatal error. The backoff
        starts afresh after a session that got the modem ready."""
        attempt = 0
        while True:
            try:
                await self._session()  # it ends only by raising
            except FatalModemError:
                raise
            except (OSError, ModemGone, TimeoutError, AtError, pdu.PduError,
                    ValueError, IndexError) as exc:  # the last two: answers garbled
                if self.health.modem == "ready":
                    attempt = 0
                self.health.modem, self.health.error = "reopening", str(exc) or type(exc).__name__
                logger.warning("modem %s: %s; reopening", self.config.device, self.health.error)
            finally:
                await self._close()
            attempt += 1
            await asyncio.sleep(backoff(attempt, self.config.max_backoff))

    async def _session(self) -> None:
        self.health.modem = "opening"
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=self.config.device, baudrate=self.config.baud)
        channel = self.channel = AtChannel(reader, writer, self._unsolicited,
                                           timeout=self.config.timeout)
        await self._set_up(channel)
        self.health.modem, self.health.error = "ready", ""
        logger.info("modem %s: ready", self.config.device)
        tasks = {asyncio.create_task(self._read_announced(channel)),
                 asyncio.create_task(self._keep_polling(channel)),
                 asyncio.create_task(channel.closed.wait())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the failure that ended the session, if one did
            raise ModemGone("the serial port closed")
        finally:
            for task in tasks:
                task.cancel()

    async def _set_up(self, channel: AtChannel) -> None:
        await channel.command("AT")
        await channel.command("ATE0")
        await channel.command("AT+CMEE=1")
        await self._unlock(channel)
        await channel.command("AT+CMGF=0")
        try:
            await channel.command('AT+CPMS="SM","SM","SM"')
        except AtError as exc:  # a modem without the choice keeps its own memory
            logger.info("modem: %s; using the modem's default message storage", exc)
        await channel.command(INDICATIONS)

    async def _unlock(self, channel: AtChannel) -> None:
        """Give the PIN when the SIM wants one; a refused PIN is fatal, not retried."""
        (state,) = [line for line in await channel.command("AT+CPIN?")
                    if line.startswith("+CPIN:")] or ["+CPIN: READY"]
        state = state.split(":", 1)[1].strip()
        if state == "READY":
            return
        if state != "SIM PIN":
            raise FatalModemError(f"the SIM is locked ({state}): unlock it in a phone first")
        if not self.config.pin:
            raise FatalModemError("the SIM asks for its PIN: give it with --pin")
        try:
            await channel.command(f'AT+CPIN="{self.config.pin}"')
        except AtError as exc:
            raise FatalModemError(
                f"the SIM refused the PIN ({exc}); not trying again, as three wrong PINs "
                "lock the SIM: correct --pin and start the bridge again") from exc

    async def _keep_polling(self, channel: AtChannel) -> None:
        """Signal and registration for /health and for sends, and the SIM swept again for
        an SMS whose indication was lost; a modem that stopped answering fails a poll
        (TimeoutError), which ends the session."""
        while True:
            await self._poll(channel)
            await self._sweep(channel)
            self._poll_soon.clear()
            await _until(self._poll_soon.wait(),
                         self.config.poll if self.health.registered else POLL_UNREGISTERED)

    async def _poll(self, channel: AtChannel) -> None:
        for line in await channel.command("AT+CSQ"):
            if line.startswith("+CSQ:"):
                self.health.rssi = int(line.split(":")[1].split(",")[0])
        for line in await channel.command("AT+CREG?"):
            if line.startswith("+CREG:"):  # +CREG: <n>,<stat>[,<lac>,<ci>]
                stat = int(line.split(":")[1].split(",")[1])
                self.health.registered = stat in REGISTERED
                self.health.registration = REGISTERED.get(stat) or NOT_REGISTERED.get(
                    stat, str(stat))

    async def _sweep(self, channel: AtChannel) -> None:
        """Every SMS on the SIM, as after a restart some were read but never delivered."""
        try:
            lines = await channel.command("AT+CMGL=4", timeout=60)
        except AtError as exc:
            logger.warning("modem: cannot list the SIM's messages: %s", exc)
            return
        for header, body in zip(lines, lines[1:]):
            if header.startswith("+CMGL:"):
                await self._take(channel, int(header.split(":")[1].split(",")[0]), body)

    async def _read_announced(self, channel: AtChannel) -> None:
        while True:
            index = await self._indexes.get()
            try:
                lines = await channel.command(f"AT+CMGR={index}")
            except AtError as exc:
                logger.warning("modem: cannot read SMS %d: %s", index, exc)
                continue
            body = next((b for h, b in zip(lines, lines[1:]) if h.startswith("+CMGR:")), None)
            if body is not None:
                await self._take(channel, index, body)

    async def _take(self, channel: AtChannel, index: int, hex_pdu: str) -> None:
        """Spool one SMS read from the SIM at `index`, for the poster."""
        try:
            message = pdu.decode(hex_pdu)
        except pdu.PduError as exc:
            logger.error("modem: SMS %d on the SIM cannot be decoded, so it stays there: %s",
                         index, exc)
            return
        if isinstance(message, pdu.StatusReport):  # a modem that stores reports on the SIM
            self._report(message)
            await self._delete(channel, index)
            return
        if not isinstance(message, pdu.Deliver):
            logger.warning("modem: SMS %d on the SIM is no received SMS; left there", index)
            return
        message_id = stable_id(message, index)
        concat = message.concat
        new = self.spool.keep_inbound(message_id, {
            "id": message_id, "from": message.sender, "text": message.text,
            "timestamp": message.timestamp.isoformat(),
            "part": {"reference": concat.reference, "total": concat.total,
                     "seqnum": concat.seqnum} if concat else None})
        self._on_sim[message_id] = (channel, index)
        if new:
            self.health.received += 1
            self._wake_poster.set()

    def _unsolicited(self, code: Unsolicited) -> None:
        if code.line.startswith("+CMTI:"):
            index = code.line.rsplit(",", 1)[-1].strip()
            if not index.isdigit():
                logger.warning("modem: a garbled indication, %r; the next poll's sweep "
                               "reads the SIM", code.line)
                return
            self._indexes.put_nowait(int(index))
        elif code.line.startswith("+CDS:") and code.pdu:
            try:
                message = pdu.decode(code.pdu)
            except pdu.PduError as exc:
                logger.error("modem: a status report cannot be decoded: %s", exc)
                return
            if isinstance(message, pdu.StatusReport):
                self._report(message)

    def _report(self, report: pdu.StatusReport) -> None:
        external_id = self.spool.external_id(report.reference)
        if external_id is None:
            logger.warning("modem: a status report for TP-MR %d, which no send here had",
                           report.reference)
            return
        self.spool.keep_report({"reference": external_id, "status": report.state,
                                "code": report.status})
        self._wake_poster.set()

    async def _delete(self, channel: AtChannel, index: int) -> None:
        try:
            await channel.command(f"AT+CMGD={index}")
        except (AtError, ModemGone, TimeoutError) as exc:
            logger.warning("modem: SMS %d stays on the SIM for now (%s); the next sweep "
                           "posts it again and the router knows it", index, exc)

    async def _close(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close()
        self._on_sim = {k: v for k, v in self._on_sim.items() if v[0] is not channel}
        while not self._indexes.empty():
            self._indexes.get_nowait()

    # The poster.
    async def keep_posting(self, session: aiohttp.ClientSession) -> None:
        """Post what the spool holds until the router has it all, forever."""
        attempt = 0
        while True:
            self._wake_poster.clear()
            if await self._post_all(session):
                attempt = 0
                await self._wake_poster.wait()
            else:
                attempt += 1
                await _until(self._wake_poster.wait(), backoff(attempt, self.config.max_backoff))

    async def _post_all(self, session: aiohttp.ClientSession) -> bool:
        """One round over the spool; False when the router took not everything."""
        base = self.config.router_url.rstrip("/") + "/"
        for message_id, payload in list(self.spool.inbound.items()):
            if not await self._post(session, base, payload):
                return False
            self.spool.drop_inbound(message_id)
            if (place := self._on_sim.pop(message_id, None)) is not None:
                await self._delete(*place)
        for key, payload in list(self.spool.reports.items()):
            if not await self._post(session, base + "status/", payload):
                return False
            self.spool.drop_report(key)
        return True

    async def _post(self, session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> bool:
        try:
            async with session.post(url, json=payload, headers=self._auth(),
                                    timeout=aiohttp.ClientTimeout(total=30)) as answer:
                if 200 <= answer.status < 300:
                    return True
                logger.warning("router %s answered %d: %s", url, answer.status,
                               (await answer.text())[:200])
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("router %s unreachable: %s", url, str(exc) or type(exc).__name__)
        return False

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"}

    # Sending, for /send.
    async def send(self, message_id: str, to: str, text: str) -> list[str]:
        """Send the text as one SMS or several parts; each part's external id. Parts that
        went in an earlier attempt for this message id are not sent again."""
        async with self._sending:  # the modem sends one SMS at a time in any case
            return await self._send(message_id, to, text)

    async def _send(self, message_id: str, to: str, text: str) -> list[str]:
        kept = self.spool.sent.get(message_id)
        reference = kept["concat"] if kept else self.spool.counter % 256
        try:
            parts = pdu.encode_submit(to, text, concat_reference=reference)
        except pdu.PduError as exc:
            raise Refused(f"cannot be sent as an SMS: {exc}", temporary=False) from None
        record = self.spool.sending(message_id, reference, len(parts))
        for part in parts[len(record["ids"]):]:
            channel = self.channel
            if channel is None or self.health.modem != "ready":
                raise Refused(f"the modem is not ready ({self.health.modem}"
                              f"{': ' + self.health.error if self.health.error else ''})", True)
            if not self.health.registered:
                raise Refused(f"no network: the modem is {self.health.registration}", True)
            try:
                lines = await channel.submit(part.length, part.hex)
            except AtError as exc:
                if exc.code == NO_NETWORK:
                    self.health.registered, self.health.registration = False, "no network"
                    self._poll_soon.set()
                raise Refused(str(exc), exc.temporary) from None
            except Unconfirmed as exc:
                raise Refused(f"not sent again, as it may have gone: {exc}", False) from None
            except (TimeoutError, ModemGone) as exc:
                raise Refused(f"the modem did not take it: {exc}", True) from None
            answer = next((line for line in lines if line.startswith("+CMGS:")), None)
            if answer is None:
                raise Refused(f"the modem answered AT+CMGS without +CMGS: {lines}", False)
            self.spool.part_sent(record, int(answer.split(":")[1].split(",")[0]))
        self.health.sent += 1
        return list(record["ids"])


async def _until(awaitable: Awaitable[Any], seconds: float) -> None:
    """Wait for `awaitable`, or `seconds`, whichever comes first."""
    try:
        await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        pass
