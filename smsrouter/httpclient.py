"""The pooled async HTTP client that backends send through, and what a gateway's answer means.

A client is bound to the event loop it was made in, and a process runs several loops over
its life: the ASGI server's, and those that asgiref's async_to_sync makes for a blocking
caller (a shell's `send()`, a Celery task) or that the tests start. So each running loop
gets one pooled session, and an async generator parked in that loop closes it when the
loop shuts down: asyncio.run(), asgiref, uvicorn and pytest-asyncio all finalize async
generators first. The server's sender, which sends nearly everything, keeps its
connections for the life of the process.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from smsrouter.exceptions import PermanentSendError, TemporarySendError

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
POOL_SIZE = 100

_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncGenerator[None, None]]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Answer:
    """A gateway's HTTP answer, read whole (gateways answer a few bytes)."""

    status: int
    text: str
    where: str  # method and URL without query or credentials: safe to log and store

    def json(self) -> Any:
        return json.loads(self.text)

    def raise_for_status(self, detail: str | None = None) -> None:
        """TemporarySendError for 429 and 5xx, PermanentSendError for other 4xx."""
        if self.status < 400:
            return
        message = f"{self.where} answered {self.status}: {detail or self.text[:300]}"
        if self.status == 429 or self.status >= 500:
            raise TemporarySendError(message)
        raise PermanentSendError(message)


async def request(
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    json: Any = None,
    auth: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Answer:
    """Make one request on this loop's pooled session, within `timeout` seconds (default:
    TIMEOUT's 30).

    Raises TemporarySendError when the gateway cannot be reached or times out; any HTTP
    answer is returned, for the backend to judge (`Answer.raise_for_status()`).
    """
    where = _where(method, url)
    headers = dict(headers or {})
    if auth is not None:
        headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
    session = await _session()
    try:
        async with session.request(
            method, url, params=_strings(params), data=_strings(data), json=json, headers=headers,
            timeout=TIMEOUT if timeout is None else aiohttp.ClientTimeout(
                total=timeout, connect=min(timeout, TIMEOUT.connect or timeout)),
        ) as response:
            return Answer(response.status, await response.text(errors="replace"), where)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise TemporarySendError(f"{where} failed: {type(exc).__name__}: {exc}") from exc


async def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    session = aiohttp.ClientSession(
        timeout=TIMEOUT, connector=aiohttp.TCPConnector(limit=POOL_SIZE)
    )
    keeper = _close_at_shutdown(session)
    await keeper.asend(None)  # started, so the loop finalizes it when it shuts down
    _sessions[loop] = (session, keeper)
    return session


async def _close_at_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await session.close()


def _where(method: str, url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{method} {parts.scheme}://{host}{port}{parts.path}"


def _strings(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    if values is None:
        return None
    return {key: value if isinstance(value, str) else str(value) for key, value in values.items()}
