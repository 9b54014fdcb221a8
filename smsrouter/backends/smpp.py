"""SMPP 3.4: a bind to an SMSC, kept by the one process that activated this backend.

The bind lives in an event loop: the ASGI server's (activate() at lifespan startup) or
that of `manage.py smsrouter_connect <name>`. Only that process can submit, so only its
sender sends for this backend: ready() is False elsewhere, and while unbound, so the
messages stay queued until the bind is up (which wakes the scheduler). None is lost while
unbound, and none is sent twice, since the sender claims its rows first.

Inbound deliver_sm PDUs become `aincoming()` calls (multipart texts reassembled first),
and delivery receipts move the outgoing message they name to delivered or failed. A
malformed one is stored as well as it reads and answered so that the SMSC does not send
it again (see _on_deliver); the link survives any PDU.
Codings and the choices behind them: smsrouter/smpp/pdu.py and docs/backends/smpp.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.core.checks import CheckMessage, Error
from django.utils import timezone

from smsrouter import heartbeat, limits, reports
from smsrouter.api import aincoming
from smsrouter.backends.base import BaseBackend, Outcome, StatusReport
from smsrouter.exceptions import BadInbound, PermanentSendError, TemporarySendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Status
from smsrouter.smpp import pdu
from smsrouter.smpp.client import BOUND, Link, LinkDown
from smsrouter.smpp.pdu import Command, Pdu

logger = logging.getLogger(__name__)

BIND_COMMANDS = {"transceiver": Command.BIND_TRANSCEIVER,
                 "transmitter": Command.BIND_TRANSMITTER,
                 "receiver": Command.BIND_RECEIVER}
#: Answers to submit_sm that a later attempt may get past.
TEMPORARY = {pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL}
#: A receipt's stat as our status; the others (UNKNOWN...) change nothing.
RECEIPT_STATUS = {"DELIVRD": Status.DELIVERED, "UNDELIV": Status.FAILED,
                  "EXPIRED": Status.FAILED, "REJECTD": Status.FAILED,
                  "DELETED": Status.FAILED, "ENROUTE": Status.SENT, "ACCEPTD": Status.SENT}
#: Parts of a long inbound text are forgotten if the rest has not come by then (seconds).
PARTS_KEPT = 600.0


class SmppBackend(BaseBackend):
    """An ESME bound to one SMSC, as a transceiver (or transmitter, or receiver)."""

    options = {
        "host": str, "port": int, "system_id": str, "password": str, "system_type": str,
        "source_addr": str, "source_addr_ton": int, "source_addr_npi": int,
        "bind_type": str, "enquire_link": (int, float), "throughput": (int, float),
        "reconnect_backoff": (int, float),
    }
    required_config = ("host", "port")
    holds_link = True
    #: submit_sm PDUs in flight at once: the SMPP window.
    default_concurrency = 10

    def __init__(self, name: str, **config: Any) -> None:
        super().__init__(name, **config)
        self.host: str = self.config["host"]
        self.port: int = self.config["port"]
        self.bind_type: str = self.config.get("bind_type", "transceiver")
        self.throughput: float = self.config.get("throughput", 10)
        self.link: Link | None = None
        #: Called with (state, detail) on each bind, unbind and reconnect.
        self.state_listeners: list[Callable[[str, str], None]] = []
        self._references = itertools.cycle(range(256))
        self._next_submit = 0.0
        self._parts: dict[tuple[str, int, int], tuple[float, dict[int, str]]] = {}
        self._bind_writes: set[asyncio.Task[None]] = set()

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        port = given.get("port")
        if isinstance(port, int) and not 0 < port < 65536:
            errors.append(Error(f"Backend {name!r}: port {port} is not a TCP port.",
                                hint="SMSCs usually listen on 2775.", id="smsrouter.E070"))
        bind_type = given.get("bind_type", "transceiver")
        if isinstance(bind_type, str) and bind_type not in BIND_COMMANDS:
            errors.append(Error(f"Backend {name!r}: bind_type {bind_type!r} is not one we know.",
                                hint="Use 'transceiver' (the default), 'transmitter' or 'receiver'.",
                                id="smsrouter.E071"))
        for option in ("enquire_link", "throughput", "reconnect_backoff"):
            value = given.get(option)
            if isinstance(value, (int, float)) and value <= 0:
                errors.append(Error(f"Backend {name!r}: {option} must be more than 0, not {value}.",
                                    hint=f"Leave {option!r} out for its default.",
                                    id="smsrouter.E072"))
        for option, size in (("system_id", 16), ("password", 9), ("system_type", 13),
                             ("source_addr", 21)):
            value = given.get(option)
            if isinstance(value, str) and (len(value) >= size or not value.isascii()):
                errors.append(Error(
                    f"Backend {name!r}: {option} must be ASCII, at most {size - 1} characters.",
                    hint="SMPP 3.4 sets these limits; your SMSC's account gives the values.",
                    id="smsrouter.E073"))
        for option in ("source_addr_ton", "source_addr_npi"):
            value = given.get(option)
            if isinstance(value, int) and not 0 <= value <= 255:
                errors.append(Error(f"Backend {name!r}: {option} {value} does not fit an octet.",
                                    hint="TON: 0 unknown, 1 international, 5 alphanumeric; "
                                         "NPI: 0 unknown, 1 ISDN (E.164).",
                                    id="smsrouter.E074"))
        return errors

    # The link, in this process.
    async def activate(self) -> None:
        """Bind in the running loop; the link binds again by itself after a drop."""
        if self.link is not None:
            return
        self.link = Link(
            self.host, self.port, BIND_COMMANDS[self.bind_type],
            {"system_id": self.config.get("system_id", ""),
             "password": self.config.get("password", ""),
             "system_type": self.config.get("system_type", ""),
             "interface_version": pdu.INTERFACE_VERSION},
            enquire_link=self.config.get("enquire_link", 30),
            reconnect_backoff=self.config.get("reconnect_backoff", 60),
            on_deliver=self._on_deliver, on_state=self._on_state,
            on_alive=lambda: self._record_bind(None),
        )
        self.link.start()

    async def deactivate(self) -> None:
        """Unbind and close the connection."""
        if self.link is not None:
            await self.link.stop()
            self.link = None
        await asyncio.gather(*self._bind_writes, return_exceptions=True)

    def ready(self) -> bool:
        """Bound, in the loop asking, and not as a receiver (which cannot submit)."""
        if self.bind_type == "receiver" or self.link is None:
            return False
        try:
            return self.link.bound
        except RuntimeError:  # no running loop, so not the link's
            return False

    def _on_state(self, state: str, detail: str) -> None:
        log = logger.info if state == BOUND else logger.warning
        log("SMPP backend %s: %s %s", self.name, state, detail)
        self._record_bind({"state": state, "since": timezone.now().isoformat()})
        if state == BOUND and self.bind_type != "receiver":
            from smsrouter import scheduler

            scheduler.wake()  # what was left queued while unbound goes now
        for listener in self.state_listeners:
            listener(state, detail)

    def _record_bind(self, state: dict[str, str] | None) -> None:
        """Write the bind's heartbeat row (its new state, or just that it is alive) for
        /metrics in any process: off the loop, in order, as Django's database thread
        takes them."""
        task = asyncio.get_running_loop().create_task(self._write_bind(state))
        self._bind_writes.add(task)
        task.add_done_callback(self._bind_writes.discard)

    async def _write_bind(self, state: dict[str, str] | None) -> None:
        try:
            await database_sync_to_async(heartbeat.beat)(heartbeat.bind_name(self.name), state)
        except Exception:
            logger.exception("SMPP backend %s: could not record the bind's state", self.name)

    # Outbound.
    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """submit_sm each message through this process's bind.

        The sender calls it only while ready(); a message whose first part finds the link
        down meanwhile fails as temporary, to be sent again once it binds.
        """
        if self.bind_type == "receiver":
            raise PermanentSendError(f"backend {self.name!r} binds as a receiver: it cannot send")
        return await self.send_each(messages, self._submit)

    async def _submit(self, message: OutgoingMessage) -> str | None:
        """The parts of one message, in order; the SMSC's id for the first."""
        identity = message.connection.identity
        international = identity.startswith("+")
        parts = pdu.submit_parts(
            message.text, next(self._references),
            source_addr=self.config.get("source_addr", ""),
            source_addr_ton=self.config.get("source_addr_ton", 0),
            source_addr_npi=self.config.get("source_addr_npi", 0),
            destination_addr=identity.removeprefix("+"),
            dest_addr_ton=1 if international else 0, dest_addr_npi=1,
            registered_delivery=1,
        )
        link = self.link
        first_id = None
        for number, part in enumerate(parts):
            if number == 0 and (link is None or not link.bound):
                raise TemporarySendError(f"SMPP backend {self.name!r} is not bound in this process")
            assert link is not None
            await self._pace()
            try:
                resp = await link.request(part)
            except (LinkDown, TimeoutError) as exc:
                raise TemporarySendError(f"SMPP: no submit_sm_resp ({exc or 'timed out'})") from exc
            status = resp.command_status
            if status in TEMPORARY:
                raise TemporarySendError(f"SMPP submit_sm: {pdu.status_name(status)}")
            if status != pdu.ESME_ROK:
                raise PermanentSendError(f"SMPP submit_sm: {pdu.status_name(status)}")
            first_id = first_id or resp.get_str("message_id")
        return first_id

    async def _pace(self) -> None:
        """At most `throughput` submit_sm per second from this backend."""
        now = time.monotonic()
        slot = max(now, self._next_submit)
        self._next_submit = slot + 1 / self.throughput
        if slot > now:
            await asyncio.sleep(slot - now)

    # Inbound.
    async def _on_deliver(self, deliver: Pdu) -> int:
        """Store the text a deliver_sm carries, or apply its receipt; the command_status to
        answer it with.

        The answer decides whether the SMSC delivers the PDU again, and SMSCs differ in
        which error statuses they retry (Vonage retries ESME_RSYSERR, ESME_RMSGQFUL,
        ESME_RTHROTTLED and four more; others retry any). So a deliver_sm that can be read
        at all is stored as well as it reads, what was wrong in fields["smpp"], and
        answered ESME_ROK: sent again it would never read better, and it could hold back
        the messages queued behind it. One that smsrouter.limits refuses to store (a
        sender empty, too long, or with NUL) is answered ESME_RX_R_APPN, "ESME Receiver
        Reject Message", which SMPP 5.0 defines as rejected and not to be retried,
        holding back no other message. A receipt that names no message of ours is
        answered ESME_ROK: there is nothing to retry. Only a failure that may pass (the
        database down) raises, and the link answers ESME_RX_T_APPN so that the SMSC may
        try again.
        """
        if deliver.get_int("esm_class") & pdu.ESM_RECEIPT:
            await self._on_receipt(deliver)
            return pdu.ESME_ROK
        source = deliver.get_str("source_addr")
        if deliver.get_int("source_addr_ton") == 1 and not source.startswith("+"):
            source = "+" + source
        concat, part = _read_part(deliver)
        if part.problems:
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d read as well as it can be: "
                                      "%s; PDU %s", self.name, deliver.sequence_number,
                                      "; ".join(part.problems), deliver.raw.hex())
        part.problems[:0] = deliver.problems
        parts = [part] if concat is None else self._reassemble(source, concat, part)
        if parts is None:
            return pdu.ESME_ROK
        try:
            await aincoming(self.name, source, "".join(p.text for p in parts),
                            fields=_fields(parts))
        except BadInbound as exc:
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d refused (%s), answered %s; "
                                      "PDU %s", self.name, deliver.sequence_number, exc,
                                      pdu.status_name(pdu.ESME_RX_R_APPN), deliver.raw.hex())
            return pdu.ESME_RX_R_APPN
        return pdu.ESME_ROK

    def _reassemble(self, source: str, concat: tuple[int, int, int],
                    part: _Part) -> list[_Part] | None:
        """The parts of the whole text, in order, once its last part is in; None until then."""
        reference, total, number = concat
        now = time.monotonic()
        for key in [key for key, (since, _) in self._parts.items() if now - since > PARTS_KEPT]:
            del self._parts[key]
        key = (source, reference, total)
        parts = self._parts.setdefault(key, (now, {}))[1]
        parts[number] = part
        if len(parts) < total:
            return None
        del self._parts[key]
        return [parts[n] for n in sorted(parts)]

    async def _on_receipt(self, deliver: Pdu) -> None:
        try:
            receipt = pdu.parse_receipt(deliver)
        except pdu.PduError as exc:
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d ignored: %s; PDU %s",
                                      self.name, deliver.sequence_number, exc, deliver.raw.hex())
            return
        if problem := limits.external_id_problem(receipt.message_id):
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d ignored: its receipted id "
                                      "%s; PDU %s", self.name, deliver.sequence_number, problem,
                                      deliver.raw.hex())
            return
        status = RECEIPT_STATUS.get(receipt.stat)
        if status is None:
            logger.info("SMPP backend %s: receipt for %s with stat:%s changes nothing",
                        self.name, receipt.message_id, receipt.stat)
            return
        error = f"SMPP stat:{receipt.stat} err:{receipt.err}" if status == Status.FAILED else ""
        report = StatusReport(status, "receipted_message_id", external_id=receipt.message_id,
                              error=error)
        try:
            await database_sync_to_async(reports.apply)(self.name, [report])
        except BadInbound as exc:
            logger.warning("SMPP backend %s: receipt ignored: %s", self.name, exc)


@dataclass
class _Part:
    """One deliver_sm's text as read, what could not be read as sent, and its octets."""

    text: str
    problems: list[str]
    octets: bytes


def _read_part(deliver: Pdu) -> tuple[tuple[int, int, int] | None, _Part]:
    """A deliver_sm's concatenation element (None without a valid one) and its text.

    A user data header that cannot be read leaves the message whole, its text read from
    the octets after the header when its length fits (else with the header's octets in);
    a text its data_coding cannot read is kept as its best reading.
    """
    octets = deliver.get_bytes("short_message") or deliver.tlvs.get(pdu.TLV_MESSAGE_PAYLOAD, b"")
    problems: list[str] = []
    concat, payload = None, octets
    if deliver.get_int("esm_class") & pdu.ESM_UDHI:
        try:
            concat, payload = pdu.split_udh(octets)
        except pdu.UdhError as exc:
            problems.append(str(exc))
            payload = exc.payload
    try:
        text = pdu.decode_text(payload, deliver.get_int("data_coding"))
    except pdu.TextError as exc:
        problems.append(str(exc))
        text = exc.text
    return concat, _Part(text, problems, octets)


def _fields(parts: list[_Part]) -> dict[str, Any]:
    """fields["smpp"] of a text that could not be read as sent: what was wrong (by part
    for a long text) and each part's short_message in hex, UDH included, to read again."""
    if not any(part.problems for part in parts):
        return {}
    if len(parts) == 1:
        problems = parts[0].problems
    else:
        problems = [f"part {number}: {problem}" for number, part in enumerate(parts, start=1)
                    for problem in part.problems]
    return {"smpp": {"problems": problems, "short_message": [part.octets.hex() for part in parts]}}
