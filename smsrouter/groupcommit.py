"""Group commit: what concurrent requests write, written together.

A server under load holds many webhook requests at once, and each would otherwise pay for
its own trip to a worker thread and its own commits. Here each request submits its item
and waits; one task per event loop hands all waiting items to `write` in one trip, which
writes them in one transaction, and answers each request only after that commit. A batch
starts as soon as the previous one is done, so a lone request waits for nobody and batches
grow only as fast as requests queue up.

Batches form on the server's loop only (the one ASGI lifespan started, see
`smsrouter.loop`), where requests are concurrent and the batch's thread is Django's shared
one. Elsewhere (a test's loop, asyncio.run() in a script) an item is written alone, as
`sync_to_async(thread_sensitive=True)` would: in the caller's thread-sensitive context.
So is an item submitted from inside a batch being written (an `async def` phase that
awaits `asend()` while its message is routed, a send once the batch commits): that
batch's thread is waiting for it, and a batch of its own would wait for that thread.
"""

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from asgiref.sync import sync_to_async
from django.db import transaction

from smsrouter import loop
from smsrouter.dbhealth import drop_broken_connections

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Items per trip: bounds a transaction's length, and so every request's wait.
MAX_BATCH = 256


def together_or_alone(
    items: list[T], together: Callable[[list[T]], list[R]], alone: Callable[[T], R], what: str
) -> list[R | Exception]:
    """`together(items)` in one transaction; if that fails, `alone(item)` for each item,
    so that an error reaches only the request whose item caused it."""
    drop_broken_connections()
    durable: list[bool] = []
    try:
        with transaction.atomic():
            # Registered first, so it runs as soon as the batch has committed, before any
            # callback of the apps' (one that is not robust raises out of this block).
            transaction.on_commit(lambda: durable.append(True))
            stored = list(together(items))
        return stored
    except Exception as exc:
        if durable:  # stored once already: storing them alone would store them twice
            logger.exception("a callback after the commit of %d %s raised", len(items), what)
            return stored
        logger.warning("a batch of %d %s failed (%s: %s); accepting them one by one",
                       len(items), what, type(exc).__name__, exc)
    results: list[R | Exception] = []
    for item in items:
        try:
            results.append(alone(item))
        except Exception as exc:
            results.append(exc)
    return results


class GroupCommit(Generic[T, R]):
    """Batches `submit()`ted items for `write(items) -> one result or exception per item`.

    `write` runs in Django's shared thread for thread-sensitive work, one batch at a time:
    it owns the transaction, and the order of batches is the order of submission.
    """

    def __init__(self, write: Callable[[list[T]], list[R | Exception]]) -> None:
        self.write = write
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its result once committed."""
        running = asyncio.get_running_loop()
        if _writing.get() or not loop.is_server_loop(running):
            [result] = await sync_to_async(self.write, thread_sensitive=True)([item])
            if isinstance(result, Exception):
                raise result
            return result
        queue = self._queues.get(running)
        if queue is None:
            queue = self._queues[running] = _Queue(self.write)
        return await queue.submit(item)


#: Set while a batch is written; asgiref carries it into what that thread awaits.
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("smsrouter_writing", default=False)


def _marked(write: Callable[[list[T]], list[R | Exception]]) -> Callable[[list[T]], list[R | Exception]]:
    def marked(items: list[T]) -> list[R | Exception]:
        token = _writing.set(True)
        try:
            return write(items)
        finally:
            _writing.reset(token)

    return marked


class _Queue(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], list[R | Exception]]) -> None:
        self.write = sync_to_async(_marked(write), thread_sensitive=True)
        self.waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.task is None:
            # A context of its own: a request's (Django's thread-sensitive context among
            # it) must not decide where the batches of all requests run.
            self.task = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                try:
                    results = await self.write([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                except BaseException:  # cancelled, as at shutdown: no request waits forever
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its request was cancelled; the write stands
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.task = None
