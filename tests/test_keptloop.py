"""Blocking callers' async work runs on a loop kept for their thread, and comes back to it
for thread-sensitive calls."""

import asyncio
import gc
import threading

import pytest
from asgiref.sync import sync_to_async

from smsrouter import keptloop


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_one_thread_keeps_one_loop_from_call_to_call():
    first, second = keptloop.run(running_loop), keptloop.run(running_loop)
    assert first is second and first.is_running()


def test_each_thread_has_a_loop_of_its_own_closed_when_the_thread_ends():
    loops = []
    worker = threading.Thread(target=lambda: loops.append(keptloop.run(running_loop)))
    worker.start()
    worker.join()
    gc.collect()
    assert loops[0] is not keptloop.run(running_loop)
    assert loops[0].is_closed()


def test_thread_sensitive_calls_come_back_to_the_waiting_thread():
    async def where_sync_code_runs() -> tuple[int, int]:
        sensitive = await sync_to_async(threading.get_ident, thread_sensitive=True)()
        return sensitive, threading.get_ident()

    sensitive, loop_thread = keptloop.run(where_sync_code_runs)
    assert sensitive == threading.get_ident() != loop_thread


def test_the_coroutines_error_is_raised_in_the_caller():
    async def fails(reason: str) -> None:
        raise LookupError(reason)

    with pytest.raises(LookupError, match="no such number"):
        keptloop.run(fails, "no such number")
    assert keptloop.run(running_loop).is_running()  # the loop goes on


@pytest.mark.asyncio
async def test_work_lent_by_a_running_loop_goes_back_to_that_loop():
    """As a sync view under the server, whose backends' links live in the server's loop."""
    assert await sync_to_async(keptloop.run)(running_loop) is asyncio.get_running_loop()


@pytest.mark.asyncio
async def test_a_running_loop_must_await_instead():
    with pytest.raises(RuntimeError, match="await instead"):
        keptloop.run(running_loop)
