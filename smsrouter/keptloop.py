"""Async work for blocking callers, on an event loop kept for each calling thread.

Called from a thread that no event loop lent work to (a shell, a Celery worker, a
management command), asgiref's async_to_sync makes a new loop for every call; so every
blocking `send()` opened a new HTTP session and new connections to the gateway, and
closed them again. Here each such thread gets a loop of its own, run by a helper thread
for as long as the calling thread lives, so pooled connections last from one call to the
next. Where a loop did lend the work (a sync view under the ASGI server, a
`sync_to_async` call), async_to_sync runs it back on that loop, where the backends'
links live, and so do we.

As under async_to_sync, the calling thread waits by running the coroutine's
thread-sensitive `sync_to_async` calls itself: a backend's ORM work stays in the caller's
thread and transaction.
"""

import asyncio
import contextvars
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from asgiref.current_thread_executor import CurrentThreadExecutor
from asgiref.sync import AsyncToSync, SyncToAsync, async_to_sync

T = TypeVar("T")

#: How long closing a loop may take at thread or process exit (its sessions' close).
CLOSE_TIMEOUT = 5.0


class _Kept:
    """A loop and the helper thread that runs it, for one calling thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name=f"smsrouter-loop-for-{threading.current_thread().name}")
        self.thread.start()
        # Closed when the calling thread ends (its thread-local goes), or at exit.
        self.finalizer = weakref.finalize(self, _close, self.loop, self.thread, self.pid)


def _close(loop: asyncio.AbstractEventLoop, thread: threading.Thread, pid: int) -> None:
    """Finalize the loop's async generators (which close its HTTP sessions), then stop it."""
    if pid != os.getpid() or loop.is_closed():  # a forked child's copy: no thread runs it
        return
    try:
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(CLOSE_TIMEOUT)
    except Exception:  # closing what is left at exit: nothing to tell anyone
        pass
    loop.call_soon_threadsafe(loop.stop)
    thread.join(CLOSE_TIMEOUT)
    if not thread.is_alive():
        loop.close()


_local = threading.local()


def _kept() -> _Kept:
    kept: _Kept | None = getattr(_local, "kept", None)
    if kept is None or kept.pid != os.getpid():  # none yet, or inherited across a fork
        kept = _local.kept = _Kept()
    return kept


def run(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """`async_to_sync(fn)(*args)`, on this thread's kept loop where no loop lent the work.

    For blocking code only: not from a thread whose event loop is running. On the kept
    loop the coroutine runs in a fresh context, since the caller's belongs to its thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("keptloop.run() called from a running event loop: await instead")
    if _lending_loop() is not None:
        return async_to_sync(fn)(*args)
    return _on_kept_loop(fn, *args)


def _lending_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop whose `sync_to_async` call this thread is serving, which
    async_to_sync would go back to (asgiref notes it per thread, and never clears it)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def _on_kept_loop(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    kept = _kept()
    executor = CurrentThreadExecutor(getattr(AsyncToSync.executors, "current", None))
    done: Future[T] = Future()

    async def main() -> None:
        # Where asgiref looks for the thread to run thread-sensitive calls in, when the
        # context names none: for this loop, the waiting caller.
        AsyncToSync.loop_thread_executors[kept.loop] = executor
        try:
            done.set_result(await fn(*args))
        except BaseException as exc:
            done.set_exception(exc)
        finally:
            del AsyncToSync.loop_thread_executors[kept.loop]

    kept.loop.call_soon_threadsafe(kept.loop.create_task, main(), context=contextvars.Context())
    executor.run_until_future(done)
    return done.result()

