"""The bridge from blocking code into the server's event loop (Hanji's callFromThread).

A sync view or a sync App phase runs in a worker thread; the network resources that apps
and backends opened at lifespan startup live in the server's loop. These two functions are
the only safe ways across. The loop is known once ASGI lifespan startup has run
(`smsrouter.asgi.ResourceLifespan`); before that, or in a process without it, they say so.
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from smsrouter.exceptions import SmsRouterError

T = TypeVar("T")

_server_loop: asyncio.AbstractEventLoop | None = None


class NoServerLoop(SmsRouterError, RuntimeError):
    """No server loop in this process: lifespan startup has not run here."""

    def __init__(self) -> None:
        super().__init__(
            "No smsrouter server loop is running in this process: serve the project with "
            "smsrouter.asgi's application and lifespan on (uvicorn --lifespan on), or await "
            "the coroutine directly where you are already async."
        )


def set_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by lifespan startup (the running loop) and shutdown (None)."""
    global _server_loop
    _server_loop = loop


def is_server_loop(candidate: asyncio.AbstractEventLoop) -> bool:
    """Whether `candidate` is this process's server loop."""
    return candidate is _server_loop


def server_loop() -> asyncio.AbstractEventLoop:
    if _server_loop is None or _server_loop.is_closed():
        raise NoServerLoop()
    return _server_loop


def call_from_thread(fn: Callable[..., Any], *args: Any) -> None:
    """Schedule `fn(*args)` in the server loop and return at once."""
    server_loop().call_soon_threadsafe(fn, *args)


def run_in_loop(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` in the server loop and wait for its result, for at most `timeout` seconds.

    From the loop's own thread this would wait for itself forever: await the coroutine
    there instead. On timeout the coroutine is cancelled and TimeoutError raised.
    """
    loop = server_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_in_loop() called from the server loop's own thread: await "
                           "the coroutine instead.")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise
