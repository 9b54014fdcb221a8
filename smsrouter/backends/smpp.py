"""SMPP 3.4: a bind to an SMSC, kept by the one process that activated this backend.

The bind lives in an event loop: the ASGI server's (activate() at lifespan startup) or
that of `manage.py smsrouter_connect <name>`; a lease in the database (take_bind) keeps
a second process from binding the same backend. Only that process can submit, so only its
sender sends for this backend: ready() is False elsewhere, and while unbound, so the
messages stay queued until the bind is up (which wakes the scheduler). None is lost while
unbound. A submit_sm is sent again only when the link dropped before its answer came (so
the SMSC may have taken it once already): an SMSC that is slow but bound is waited for up
to `submit_timeout`, after which the message fails rather than risk a second SMS.

Inbound deliver_sm PDUs are stored through `aincoming()`, a long text's parts one by one
through smsrouter.parts, which reassembles them durably; delivery receipts move the
outgoing message they name to delivered or failed. A
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
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.core.checks import CheckMessage, Error, Warning
from django.db.models import Q
from django.utils import timezone

from smsrouter import conf, heartbeat, limits, parts, reports
from smsrouter.api import aincoming
from smsrouter.backends.base import BaseBackend, Inbound, Outcome, PartOf, StatusReport
from smsrouter.exceptions import BadInbound, PermanentSendError, TemporarySendError
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Lease, Status
from smsrouter.smpp import pdu
from smsrouter.smpp.client import BOUND, Link, LinkDown, reason
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
#: How a receipt's id is written, from the id submit_sm_resp gave: the option
#: `receipt_id_format`, each value with the forms that id may have been stored in.
RECEIPT_ID_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "as_is": lambda receipted: [receipted],
    # submit_sm_resp gave hex, the receipt gives it in decimal: case is not known.
    "hex_to_decimal": lambda receipted: list(dict.fromkeys(
        [f"{int(receipted, 10):x}", f"{int(receipted, 10):X}"])),
    "decimal_to_hex": lambda receipted: [str(int(receipted, 16))],
}


class SmppBackend(BaseBackend):
    """An ESME bound to one SMSC, as a transceiver (or transmitter, or receiver)."""

    options = {
        "host": str, "port": int, "system_id": str, "password": str, "system_type": str,
        "source_addr": str, "source_addr_ton": int, "source_addr_npi": int,
        "bind_type": str, "enquire_link": (int, float), "throughput": (int, float),
        "reconnect_backoff": (int, float), "enquire_link_timeout": (int, float),
        "submit_timeout": (int, float), "receipt_id_format": str,
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
        #: Seconds to wait for a submit_sm_resp while the link is up.
        self.submit_timeout: float = self.config.get("submit_timeout", 60)
        self.receipt_ids = RECEIPT_ID_FORMATS[self.config.get("receipt_id_format", "as_is")]
        #: Who this process is in the bind's lease: one process per backend binds.
        self.holder = heartbeat.holder()
        self.link: Link | None = None
        #: Called with (state, detail) on each bind, unbind and reconnect.
        self.state_listeners: list[Callable[[str, str], None]] = []
        self._references = itertools.cycle(range(256))
        self._next_submit = 0.0
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
        for option in ("enquire_link", "throughput", "reconnect_backoff",
                       "enquire_link_timeout", "submit_timeout"):
            value = given.get(option)
            if isinstance(value, (int, float)) and value <= 0:
                errors.append(Error(f"Backend {name!r}: {option} must be more than 0, not {value}.",
                                    hint=f"Leave {option!r} out for its default.",
                                    id="smsrouter.E072"))
        # E073, which refused a password over 8 characters, is retired: see W071.
        for option, size in (("system_id", 16), ("password", None), ("system_type", 13),
                             ("source_addr", 21)):
            value = given.get(option)
            if isinstance(value, str) and (not value.isascii() or size and len(value) >= size):
                limit = f", at most {size - 1} characters" if size else ""
                errors.append(Error(
                    f"Backend {name!r}: {option} must be ASCII{limit}.",
                    hint="SMPP 3.4 sets these limits; your SMSC's account gives the values.",
                    id="smsrouter.E075"))
        password = given.get("password")
        if isinstance(password, str) and len(password) > 8:
            errors.append(Warning(
                f"Backend {name!r}: password is over SMPP 3.4's 8 characters.",
                hint="Some SMSCs take longer ones; if the bind is refused with "
                     "ESME_RINVPASWD, ask for an 8-character password.",
                id="smsrouter.W071"))
        submit_timeout = given.get("submit_timeout", 60)
        recover_after = conf.get("SMSROUTER_RECOVER_AFTER")
        if isinstance(submit_timeout, (int, float)) and submit_timeout >= recover_after:
            errors.append(Error(
                f"Backend {name!r}: submit_timeout {submit_timeout} is not below "
                f"SMSROUTER_RECOVER_AFTER ({recover_after}).",
                hint="The sweep would queue a message again while its submit_sm_resp is "
                     "still awaited, and the SMSC could get it twice.",
                id="smsrouter.E077"))
        receipt_id_format = given.get("receipt_id_format", "as_is")
        if isinstance(receipt_id_format, str) and receipt_id_format not in RECEIPT_ID_FORMATS:
            errors.append(Error(
                f"Backend {name!r}: receipt_id_format {receipt_id_format!r} is not one we know.",
                hint="Use " + ", ".join(map(repr, RECEIPT_ID_FORMATS)) + ".",
                id="smsrouter.E076"))
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
            enquire_link_timeout=self.config.get("enquire_link_timeout", 10),
            reconnect_backoff=self.config.get("reconnect_backoff", 60),
            on_deliver=self._on_deliver, on_state=self._on_state,
            on_alive=self._on_alive, may_bind=self._may_bind,
        )
        self.link.start()

    async def deactivate(self) -> None:
        """Unbind, close the connection and give up the bind's lease."""
        if self.link is not None:
            await self.link.stop()
            self.link = None
            try:
                await database_sync_to_async(release_bind)(self.name, self.holder)
            except Exception:
                logger.exception("SMPP backend %s: could not give up the bind's lease", self.name)
        await asyncio.gather(*self._bind_writes, return_exceptions=True)

    def ready(self) -> bool:
        """Bound, in the loop asking, and not as a receiver (which cannot submit)."""
        if self.bind_type == "receiver" or self.link is None:
            return False
        try:
            return self.link.bound
        except RuntimeError:  # no running loop, so not the link's
            return False

    def _lease_seconds(self) -> float:
        """How long the lease lasts unrenewed: two enquire_link rounds that went unanswered."""
        return 2 * (self.config.get("enquire_link", 30) + self.config.get("enquire_link_timeout", 10))

    async def _may_bind(self) -> str:
        """Take the bind's lease before connecting: "" if this process may bind, else why
        not. A database that cannot be reached guards nothing: the link binds all the
        same, since receiving does not wait for it (deliver_sm is answered ESME_RX_T_APPN
        until it is back)."""
        try:
            held_by = await database_sync_to_async(take_bind)(
                self.name, self.holder, self._lease_seconds())
        except Exception as exc:
            logger.warning("SMPP backend %s: binding without the bind's lease, which could "
                           "not be taken: %s", self.name, reason(exc))
            return ""
        return f"bound by {held_by} (its lease)" if held_by else ""

    def _on_alive(self) -> None:
        self._record_bind(None)
        task = asyncio.get_running_loop().create_task(self._renew())
        self._bind_writes.add(task)
        task.add_done_callback(self._bind_writes.discard)

    async def _renew(self) -> None:
        """Renew the lease on each answered enquire_link; a lease lost meanwhile (this
        process was too slow, another took it) closes the link, whose reconnect waits."""
        try:
            held_by = await database_sync_to_async(take_bind)(
                self.name, self.holder, self._lease_seconds())
        except Exception:
            logger.exception("SMPP backend %s: could not renew the bind's lease", self.name)
            return
        if held_by and self.link is not None:
            self.link.close(f"lease lost to {held_by}")

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
        down meanwhile fails as temporary, to be sent again once it binds, as does one
        whose submit_sm_resp the drop of the link cut off (the sender counts each attempt).
        A link that stays up is waited on for `submit_timeout`: no answer by then fails
        the message, since the SMSC may hold it and a resend could deliver it twice.
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
        ids: list[str] = []
        for number, part in enumerate(parts):
            if number == 0 and (link is None or not link.bound):
                raise TemporarySendError(f"SMPP backend {self.name!r} is not bound in this process")
            assert link is not None
            await self._pace()
            try:
                resp = await link.request(part, self.submit_timeout)
            except LinkDown as exc:
                raise TemporarySendError(f"SMPP: no submit_sm_resp: {exc}") from exc
            except TimeoutError as exc:
                raise PermanentSendError(f"SMPP: not sent again, as the SMSC may have taken it: "
                                         f"{reason(exc)}") from exc
            status = resp.command_status
            if status in TEMPORARY:
                raise TemporarySendError(f"SMPP submit_sm: {pdu.status_name(status)}")
            if status != pdu.ESME_ROK:
                raise PermanentSendError(f"SMPP submit_sm: {pdu.status_name(status)}")
            ids.append(resp.get_str("message_id"))
        if len(ids) > 1 and message.id is not None:
            await database_sync_to_async(reports.keep_part_ids)(message.id, ids)
        return ids[0] or None

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
        try:
            await self._reassemble(Inbound(source, part.text, fields=_fields(part),
                                           part=concat and PartOf(str(concat[0]), *concat[1:])))
        except BadInbound as exc:
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d refused (%s), answered %s; "
                                      "PDU %s", self.name, deliver.sequence_number, exc,
                                      pdu.status_name(pdu.ESME_RX_R_APPN), deliver.raw.hex())
            return pdu.ESME_RX_R_APPN
        return pdu.ESME_ROK

    async def _reassemble(self, message: Inbound) -> None:
        """Accept a whole message, or store a part durably (smsrouter.parts): either way
        committed before the deliver_sm is answered, so an SMSC whose answer never came
        (the process died) delivers it again."""
        if message.part is None:
            await aincoming(self.name, message.identity, message.text, fields=message.fields)
        else:
            await database_sync_to_async(parts.receive)(self.name, message)

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
        try:
            candidates = self.receipt_ids(receipt.message_id)
        except ValueError:
            pdu.malformed_log.warning("SMPP backend %s: deliver_sm %d ignored: its receipted id "
                                      "%r is not the number receipt_id_format expects; PDU %s",
                                      self.name, deliver.sequence_number, receipt.message_id,
                                      deliver.raw.hex())
            return
        status = RECEIPT_STATUS.get(receipt.stat)
        if status is None:
            logger.info("SMPP backend %s: receipt for %s with stat:%s changes nothing",
                        self.name, receipt.message_id, receipt.stat)
            return
        error = f"SMPP stat:{receipt.stat} err:{receipt.err}" if status == Status.FAILED else ""
        for external_id in candidates:
            report = StatusReport(status, "receipted_message_id", external_id=external_id,
                                  error=error)
            try:
                await database_sync_to_async(reports.apply)(self.name, [report])
                return
            except BadInbound as exc:
                problem = exc
        logger.warning("SMPP backend %s: receipt ignored: %s", self.name, problem)


@dataclass
class _Part:
    """One deliver_sm's text as read, what could not be read as sent, and its octets
    (UDH included)."""

    text: str
    problems: list[str]
    octets: bytes


def _read_part(deliver: Pdu) -> tuple[tuple[int, int, int] | None, _Part]:
    """Where a deliver_sm belongs in a long text, (reference, total, number) (None without
    a valid UDH concatenation element or SAR TLVs), and its text.

    A user data header that cannot be read leaves the message whole, its text read from
    the octets after the header when its length fits (else with the header's octets in);
    so do SAR TLVs that cannot be read. A text its data_coding cannot read is kept as its
    best reading.
    """
    octets = deliver.get_bytes("short_message") or deliver.tlvs.get(pdu.TLV_MESSAGE_PAYLOAD, b"")
    problems: list[str] = []
    concat, payload = _read_sar(deliver, problems), octets
    if deliver.get_int("esm_class") & pdu.ESM_UDHI:
        try:
            udh, payload = pdu.split_udh(octets)
        except pdu.UdhError as exc:
            problems.append(str(exc))
            payload = exc.payload
        else:
            concat = concat or udh
    try:
        text = pdu.decode_text(payload, deliver.get_int("data_coding"))
    except pdu.TextError as exc:
        problems.append(str(exc))
        text = exc.text
    return concat, _Part(text, problems, octets)


#: The SAR TLVs of a part, with the octets each must have.
SAR_TLVS = {pdu.TLV_SAR_MSG_REF_NUM: 2, pdu.TLV_SAR_TOTAL_SEGMENTS: 1,
            pdu.TLV_SAR_SEGMENT_SEQNUM: 1}


def _read_sar(deliver: Pdu, problems: list[str]) -> tuple[int, int, int] | None:
    """The part that SAR TLVs name; None without them, or (with a problem) when they
    cannot name a part of a text."""
    values = {tag: deliver.tlvs.get(tag) for tag in SAR_TLVS}
    if all(value is None for value in values.values()):
        return None
    if any(value is None or len(value) != SAR_TLVS[tag] for tag, value in values.items()):
        problems.append("SAR TLVs incomplete or of the wrong length: "
                        + ", ".join(f"0x{tag:04X}={'' if v is None else v.hex()}"
                                    for tag, v in values.items()))
        return None
    reference = int.from_bytes(values[pdu.TLV_SAR_MSG_REF_NUM], "big")
    total = values[pdu.TLV_SAR_TOTAL_SEGMENTS][0]
    number = values[pdu.TLV_SAR_SEGMENT_SEQNUM][0]
    if not 1 <= number <= total:
        problems.append(f"SAR TLVs name part {number} of {total}")
        return None
    return reference, total, number


def _fields(part: _Part) -> dict[str, Any]:
    """fields["smpp"] of a part that could not be read as sent: what was wrong and its
    short_message in hex, UDH included, to read again (smsrouter.parts keeps each part's
    of a long text)."""
    if not part.problems:
        return {}
    return {"smpp": {"problems": part.problems, "short_message": [part.octets.hex()]}}


def lease_name(backend_name: str) -> str:
    return f"smpp bind {backend_name}"[:200]


def take_bind(backend_name: str, holder: str, seconds: float) -> str:
    """Take or renew the lease on a backend's bind for `seconds`: "" once held, else who
    holds it. One UPDATE decides, so two processes never both win."""
    now = timezone.now()
    name = lease_name(backend_name)
    Lease.objects.bulk_create([Lease(name=name, due_at=now)], ignore_conflicts=True)
    won = Lease.objects.filter(Q(holder=holder) | Q(due_at__lte=now), name=name).update(
        due_at=now + timedelta(seconds=seconds), holder=holder)
    if won:
        return ""
    return Lease.objects.filter(name=name).values_list("holder", flat=True).first() or "?"


def release_bind(backend_name: str, holder: str) -> None:
    """Let another process bind at once, rather than once the lease runs out."""
    Lease.objects.filter(name=lease_name(backend_name), holder=holder).update(
        due_at=timezone.now())
