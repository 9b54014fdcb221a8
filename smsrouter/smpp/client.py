"""An ESME's session with an SMSC, kept up in the running event loop.

`Link` connects, binds, reads every PDU, answers enquire_link and unbind, sends its own
enquire_link every interval, and, when the link drops, the bind is refused or an
enquire_link goes unanswered for `enquire_link_timeout`, connects again after a backoff
that doubles up to a cap. Requests (submit_sm) are matched to
their responses by sequence_number, so many may be in flight at once.

Incoming deliver_sm PDUs are handled one at a time, in order, by a task of their own:
handling one may submit a reply, whose response this session's reader must still read.

No PDU ends the session, however malformed: one whose header cannot be read gets a
generic_nack (SMPP 3.4 section 4.3), and its octets are skipped by its command_length (a
command_length below the header's 16 octets counts as 16); one whose body is malformed
is handled as far as it could be read. Each is logged with its octets on
`smsrouter.smpp.malformed`. If the SMSC's octets no longer frame PDUs at all, our own
enquire_link goes unanswered and the link is closed and bound again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from smsrouter.smpp.pdu import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_ROK,
    ESME_RX_T_APPN,
    HEADER,
    HEADER_SIZE,
    MAX_PDU_SIZE,
    Command,
    Pdu,
    PduError,
    malformed_log,
    status_name,
)

logger = logging.getLogger(__name__)

BOUND, UNBOUND, RECONNECTING = "bound", "unbound", "reconnecting"
#: Seconds to wait for the SMSC's response to a bind or unbind; `request()`'s default.
RESPONSE_TIMEOUT = 10.0
#: The first reconnect delay; it doubles after each failure, up to `reconnect_backoff`.
FIRST_BACKOFF = 1.0


class LinkDown(ConnectionError):
    """The request could not be answered: no bind, or the link dropped meanwhile."""


def reason(exc: BaseException) -> str:
    """An exception as text that is never empty: str(TimeoutError()) is."""
    return f"{exc} ({type(exc).__name__})" if str(exc) else type(exc).__name__


class Link:
    """One bind to an SMSC, reconnected until `stop()`.

    `on_deliver(pdu)` is awaited for each deliver_sm, its `problems` listing what could not
    be read; the SMSC is answered with the command_status it returns once it returns
    (ESME_RX_T_APPN if it raised, so that the SMSC delivers it again later).
    `on_state(state, detail)` hears of each bind, unbind and reconnect, and `on_alive()`
    of each enquire_link the SMSC answered. `may_bind()`, awaited before each connection,
    returns why this process must not bind now (another holds the bind), or "".
    """

    def __init__(
        self,
        host: str,
        port: int,
        bind_command: Command,
        bind_fields: dict[str, Any],
        *,
        enquire_link: float,
        enquire_link_timeout: float = RESPONSE_TIMEOUT,
        reconnect_backoff: float,
        on_deliver: Callable[[Pdu], Awaitable[int]],
        on_state: Callable[[str, str], None],
        on_alive: Callable[[], None] = lambda: None,
        may_bind: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.bind_command, self.bind_fields = bind_command, bind_fields
        self.enquire_link, self.reconnect_backoff = enquire_link, reconnect_backoff
        self.enquire_link_timeout = enquire_link_timeout
        self.on_deliver, self.on_state, self.on_alive = on_deliver, on_state, on_alive
        self.may_bind = may_bind
        self.state = UNBOUND
        self.loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = itertools.cycle(range(1, 0x80000000))
        self._deliveries: asyncio.Queue[tuple[Pdu, asyncio.StreamWriter]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: Why this side closed the connection, for the reconnect's detail.
        self._closed_because = ""

    @property
    def bound(self) -> bool:
        """Whether requests may be sent now, from this loop."""
        return self.state == BOUND and self.loop is asyncio.get_running_loop()

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._run(), name=f"smpp {self.host}:{self.port}"),
                       asyncio.create_task(self._handle_deliveries(), name="smpp deliver_sm")]

    async def stop(self) -> None:
        """Unbind (when bound), then close the connection and end the tasks."""
        self._stopping = True
        if self.state == BOUND:
            with contextlib.suppress(LinkDown, TimeoutError):
                await self.request(Pdu(Command.UNBIND))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.state = UNBOUND
        self.on_state(UNBOUND, f"from {self.host}:{self.port}")

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send a request PDU and return its response within `timeout` seconds
        (RESPONSE_TIMEOUT by default); LinkDown if the link is or goes down first, else
        TimeoutError saying how long it waited."""
        timeout = RESPONSE_TIMEOUT if timeout is None else timeout
        writer = self._writer
        if writer is None or writer.is_closing():
            raise LinkDown(f"not connected to {self.host}:{self.port}")
        pdu.sequence_number = next(self._sequence)
        answer = asyncio.get_running_loop().create_future()
        self._pending[pdu.sequence_number] = answer
        try:
            writer.write(pdu.encode())
            await writer.drain()
            async with asyncio.timeout(timeout):
                return await answer
        except TimeoutError:
            name = Command(pdu.command_id).name.lower()
            raise TimeoutError(f"no answer to {name} in {timeout:g} s "
                               f"from {self.host}:{self.port}") from None
        except LinkDown:
            raise
        except ConnectionError as exc:
            raise LinkDown(reason(exc)) from exc
        finally:
            self._pending.pop(pdu.sequence_number, None)

    def close(self, why: str) -> None:
        """Close the connection (without an unbind) for a reconnect, saying why."""
        self._closed_because = why
        if self._writer:
            self._writer.close()

    def _set_state(self, state: str, detail: str) -> None:
        if state != self.state or state == RECONNECTING:
            self.state = state
            self.on_state(state, detail)

    async def _run(self) -> None:
        delay = min(FIRST_BACKOFF, self.reconnect_backoff)
        while True:
            if self.may_bind and (why := await self.may_bind()):
                self._set_state(RECONNECTING, f"{why}; again in {delay:g} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_backoff)
                continue
            try:
                reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                why = f"cannot connect to {self.host}:{self.port}: {reason(exc)}"
            else:
                why, was_bound = await self._session(reader, self._writer)
                if self._stopping:
                    return
                if was_bound:
                    delay = min(FIRST_BACKOFF, self.reconnect_backoff)
            self._set_state(RECONNECTING, f"{why}; again in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_backoff)

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> tuple[str, bool]:
        """One connection, from bind to drop: why it ended, and whether it was bound."""
        self._closed_because = ""
        reading = asyncio.create_task(self._read(reader, writer))
        keeping: asyncio.Task[None] | None = None
        try:
            resp = await self.request(Pdu(self.bind_command, fields=self.bind_fields))
            if resp.command_status != ESME_ROK:
                return f"bind refused: {status_name(resp.command_status)}", False
            self._set_state(BOUND, f"as {self.bind_fields['system_id']!r} to "
                                   f"{self.host}:{self.port} ({resp.get_str('system_id')})")
            keeping = asyncio.create_task(self._keep_alive())
            why = await reading
            return self._closed_because or why, True
        except (LinkDown, TimeoutError) as exc:
            return f"bind failed: {reason(exc)}", False
        finally:
            if keeping:
                keeping.cancel()
            reading.cancel()
            writer.close()
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(LinkDown(f"link to {self.host}:{self.port} dropped"))
            self.state = UNBOUND if self.state == BOUND else self.state

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Read PDUs until the link drops; why it dropped."""
        while True:
            try:
                data = await self._next_pdu(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                return f"connection closed ({type(exc).__name__})"
            if data is None:
                continue
            try:
                pdu = Pdu.decode(data)
            except PduError as exc:
                malformed_log.warning("SMPP %s:%d sent a malformed PDU (%s): %s",
                                      self.host, self.port, exc, data.hex())
                if exc.partial is None:
                    sequence = HEADER.unpack_from(data)[3]
                    writer.write(Pdu(Command.GENERIC_NACK, sequence, exc.status).encode())
                    continue
                pdu = exc.partial
            if pdu.is_response:
                if (answer := self._pending.get(pdu.sequence_number)) and not answer.done():
                    answer.set_result(pdu)
            elif pdu.command_id == Command.ENQUIRE_LINK:
                writer.write(pdu.response().encode())
            elif pdu.command_id == Command.UNBIND:
                writer.write(pdu.response().encode())
                await writer.drain()
                return "the SMSC unbound"
            elif pdu.command_id == Command.DELIVER_SM:
                self._deliveries.put_nowait((pdu, writer))
            else:
                writer.write(Pdu(Command.GENERIC_NACK, pdu.sequence_number, ESME_RINVCMDID).encode())

    async def _next_pdu(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bytes | None:
        """The next PDU's octets; None for one whose command_length is out of bounds,
        which is answered and skipped here without holding more than a chunk of it."""
        header = await reader.readexactly(HEADER_SIZE)
        length, _, _, sequence = HEADER.unpack(header)
        if HEADER_SIZE <= length <= MAX_PDU_SIZE:
            return header + await reader.readexactly(length - HEADER_SIZE)
        bound = f"below {HEADER_SIZE}" if length < HEADER_SIZE else f"over {MAX_PDU_SIZE}"
        malformed_log.warning("SMPP %s:%d sent a PDU with command_length %d, %s octets; "
                              "skipped after its header: %s",
                              self.host, self.port, length, bound, header.hex())
        writer.write(Pdu(Command.GENERIC_NACK, sequence, ESME_RINVCMDLEN).encode())
        remaining = max(length - HEADER_SIZE, 0)
        while remaining:
            chunk = await reader.read(min(remaining, MAX_PDU_SIZE))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
        return None

    async def _keep_alive(self) -> None:
        """enquire_link every interval; no answer within `enquire_link_timeout` closes the
        link for a reconnect, which fails what is in flight with LinkDown."""
        while True:
            await asyncio.sleep(self.enquire_link)
            try:
                await self.request(Pdu(Command.ENQUIRE_LINK), self.enquire_link_timeout)
            except TimeoutError as exc:
                logger.warning("SMPP %s:%d: %s", self.host, self.port, exc)
                self.close(f"hung: {exc}")
                return
            self.on_alive()

    async def _handle_deliveries(self) -> None:
        while True:
            pdu, writer = await self._deliveries.get()
            try:
                status = await self.on_deliver(pdu)
            except Exception:
                logger.exception("SMPP %s:%d: handling deliver_sm %d failed",
                                 self.host, self.port, pdu.sequence_number)
                status = ESME_RX_T_APPN
            if not writer.is_closing():
                writer.write(pdu.response(status, message_id="").encode())
