"""Group commit: concurrent webhooks' messages written together, each answered once durable.

Batches form on the server's loop only; `server_loop` makes the test's loop that one, as
the ASGI lifespan would, and without it each item is written alone.
"""

import asyncio
import threading
from datetime import datetime

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync, sync_to_async
from django.db import DatabaseError, transaction

import smsrouter
from smsrouter import inbound, loop, outbox
from smsrouter.api import aincoming, asend
from smsrouter.backends import locmem
from smsrouter.groupcommit import GroupCommit
from smsrouter.models import Message, Status


@pytest_asyncio.fixture
async def server_loop():
    """The test's loop as the server's, as lifespan startup makes it; reset afterwards."""
    loop.set_server_loop(asyncio.get_running_loop())
    yield
    loop.set_server_loop(None)


def recording(batches):
    def write(items):
        batches.append(list(items))
        return [ValueError(f"bad {item}") if item == "bad" else item.upper() for item in items]
    return write


@pytest.mark.asyncio
async def test_concurrent_items_share_a_batch_in_order_and_a_lone_one_waits_for_nobody(server_loop):
    batches = []
    group = GroupCommit(recording(batches))
    assert await group.submit("alone") == "ALONE"
    assert await asyncio.gather(*(group.submit(x) for x in "abcd")) == ["A", "B", "C", "D"]
    assert batches[0] == ["alone"]
    assert [item for batch in batches[1:] for item in batch] == list("abcd")
    assert len(batches) < 5  # the first write was under way while the rest queued up


@pytest.mark.asyncio
async def test_an_items_error_reaches_only_its_submitter(server_loop):
    group = GroupCommit(recording([]))
    results = await asyncio.gather(group.submit("ok"), group.submit("bad"), return_exceptions=True)
    assert results[0] == "OK"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad bad"


@pytest.mark.asyncio
async def test_a_failing_write_fails_each_request_of_its_batch_and_the_next_batch_goes_on(server_loop):
    calls = []

    def write(items):
        calls.append(items)
        if len(calls) == 1:
            raise OSError("disk full")
        return items

    group = GroupCommit(write)
    with pytest.raises(OSError, match="disk full"):
        await group.submit("first")
    assert await group.submit("second") == "second"


@pytest.mark.asyncio
async def test_off_the_server_loop_each_item_is_written_alone_in_the_callers_context():
    """A test's loop, asyncio.run() in a script: no batches, and the write runs where
    `sync_to_async(thread_sensitive=True)` would run it."""
    batches = []
    group = GroupCommit(recording(batches))
    assert await asyncio.gather(*(group.submit(x) for x in "abc")) == ["A", "B", "C"]
    assert batches == [["a"], ["b"], ["c"]]
    with pytest.raises(ValueError, match="bad bad"):
        await group.submit("bad")


@pytest.fixture
def batch_apps(settings):
    settings.SMSROUTER_APPS = ["tests.apps.BadQueryOnOops", "smsrouter.contrib.echo.EchoApp"]
    settings.INSTALLED_BACKENDS = {"mem": {"ENGINE": "smsrouter.backends.locmem.LocmemBackend"}}
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    locmem.outbox.clear()


@pytest.mark.asyncio
async def test_concurrent_webhooks_are_each_stored_routed_once_and_answered(async_db, batch_apps, server_loop):
    texts = [f"echo {n}" for n in range(30)]
    msgs = await asyncio.gather(*(aincoming("mem", f"+2557000000{n:02}", text)
                                  for n, text in enumerate(texts)))
    assert [msg.text for msg in msgs] == texts
    assert sorted(m.text for m in locmem.outbox) == sorted(str(n) for n in range(30))
    assert await Message.objects.filter(direction="in", status=Status.HANDLED).acount() == 30
    assert await Message.objects.filter(direction="out", status=Status.SENT).acount() == 30


@pytest.mark.asyncio
async def test_a_retried_webhook_in_the_same_batch_is_routed_once(async_db, batch_apps, server_loop):
    first, retry = await asyncio.gather(aincoming("mem", "+1", "echo once", external_id="k1"),
                                        aincoming("mem", "+1", "echo once", external_id="k1"))
    assert first.id == retry.id
    assert [m.text for m in locmem.outbox] == ["once"]
    assert await Message.objects.filter(direction="in").acount() == 1


@pytest.mark.asyncio
async def test_an_apps_failed_query_spoils_no_other_message_of_its_batch(async_db, batch_apps, server_loop):
    """On PostgreSQL the failed query dooms the transaction: each message's routing has a
    savepoint of its own, so only that message's routing is undone. The SMS stays stored."""
    texts = ["echo a", "oops", "echo b"]
    await asyncio.gather(*(aincoming("mem", f"+{n}", text) for n, text in enumerate(texts)))
    assert sorted(m.text for m in locmem.outbox) == ["a", "b"]
    stored = {m.text: m.status async for m in Message.objects.filter(direction="in")}
    assert stored["echo a"] == stored["echo b"] == Status.HANDLED
    assert stored["oops"] in (Status.HANDLED, Status.FAILED)


@pytest.mark.asyncio
async def test_a_batch_that_cannot_commit_is_accepted_message_by_message(
    async_db, batch_apps, server_loop, monkeypatch, caplog
):
    def broken(items):
        raise DatabaseError("the batch's INSERT failed")

    monkeypatch.setattr(inbound, "store_many", broken)
    await asyncio.gather(*(aincoming("mem", f"+{n}", f"echo {n}") for n in range(5)))
    assert sorted(m.text for m in locmem.outbox) == ["0", "1", "2", "3", "4"]
    assert await Message.objects.filter(direction="in", status=Status.HANDLED).acount() == 5
    assert "accepting them one by one" in caplog.text


@pytest.mark.asyncio
async def test_blocking_code_calling_aincoming_keeps_its_thread_and_transaction(async_db, batch_apps):
    """A sync caller waits in the thread the group commit would need: its own thread does
    the work instead, inside its transaction (here rolled back), and nothing deadlocks."""

    def in_a_transaction_that_fails() -> None:
        with transaction.atomic():
            async_to_sync(aincoming)("mem", "+1", "echo rolled back")
            raise RuntimeError("the caller's own error")

    with pytest.raises(RuntimeError, match="the caller's own error"):
        await asyncio.wait_for(sync_to_async(in_a_transaction_that_fails)(), timeout=10)
    assert not await Message.objects.aexists()


@pytest.mark.asyncio
async def test_a_cancelled_batch_leaves_no_request_waiting_forever(server_loop):
    """As at shutdown: the batch in flight is cancelled, and so are its requests."""
    started, release = threading.Event(), threading.Event()

    def write(items):
        started.set()
        release.wait(5)
        return items

    group = GroupCommit(write)
    request = asyncio.ensure_future(group.submit("in flight"))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
    group._queues[asyncio.get_running_loop()].task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(request, 5)
    release.set()


@pytest.mark.asyncio
async def test_concurrent_asends_are_stored_together_and_each_sent_once(async_db, batch_apps, server_loop, monkeypatch):
    stores = []
    original = outbox.store
    monkeypatch.setattr(outbox, "store", lambda batches, due_at=None: (
        stores.append(sum(len(messages) for messages, _ in batches)), original(batches, due_at))[1])
    texts = [f"reminder {n}" for n in range(20)]
    sent = await asyncio.gather(*(asend(text, f"+2557100000{n:02}", backend="mem")
                                  for n, text in enumerate(texts)))
    assert [[m.text for m in messages] for messages in sent] == [[text] for text in texts]
    assert all(m.status == Status.SENT and m.id for messages in sent for m in messages)
    assert sorted(m.text for m in locmem.outbox) == sorted(texts)
    assert await Message.objects.filter(direction="out", status=Status.SENT).acount() == 20
    assert sum(stores) == 20 and len(stores) < 20


@pytest.mark.asyncio
async def test_a_bad_recipient_fails_only_its_own_asend(async_db, batch_apps, server_loop):
    results = await asyncio.gather(
        asend("fine", "+1", backend="mem"), asend("bad", ["+2", ""], backend="mem"),
        asend("later", "+3", backend="mem", at=datetime(2030, 1, 1)),  # naive: refused
        asend("also fine", "+4", backend="mem"), return_exceptions=True)
    assert [m.text for m in results[0]] == ["fine"] and [m.text for m in results[3]] == ["also fine"]
    assert isinstance(results[1], ValueError) and "''" in str(results[1])
    assert isinstance(results[2], ValueError) and "aware" in str(results[2])
    assert sorted(m.text for m in locmem.outbox) == ["also fine", "fine"]
    assert sorted([t async for t in Message.objects.values_list("text", flat=True)]) == [
        "also fine", "fine"]


@pytest.mark.asyncio
async def test_asends_whose_batch_cannot_commit_are_stored_one_by_one(
    async_db, batch_apps, server_loop, monkeypatch, caplog
):
    calls = []
    original = outbox.store

    def store_failing_in_a_batch(batches, due_at=None):
        calls.append(sum(len(messages) for messages, _ in batches))
        if calls[-1] > 1:
            raise DatabaseError("the batch's INSERT failed")
        return original(batches, due_at)

    monkeypatch.setattr(outbox, "store", store_failing_in_a_batch)
    await asyncio.gather(*(asend(f"n{n}", f"+{n}", backend="mem") for n in range(5)))
    assert sorted(m.text for m in locmem.outbox) == [f"n{n}" for n in range(5)]
    assert await Message.objects.filter(direction="out", status=Status.SENT).acount() == 5
    assert calls[0] == 5 and "accepting them one by one" in caplog.text


class Notifies(smsrouter.App):
    """Tells a supervisor about each message, then answers it."""

    def handle(self, msg):
        smsrouter.send(f"notified of {msg.text}", "+999", backend="mem")
        return msg.respond("ok")


class NotifiesAsync(smsrouter.App):
    async def handle(self, msg):
        await smsrouter.asend(f"notified of {msg.text}", "+999", backend="mem")
        return msg.respond("ok")


@pytest.mark.parametrize("app", ["Notifies", "NotifiesAsync"])
@pytest.mark.asyncio
async def test_an_app_that_sends_while_the_server_routes_its_batch(async_db, batch_apps, server_loop,
                                                                 settings, app):
    """A `def` handle() calls send(), an `async def` one awaits asend(): either way the
    message is stored with the batch's replies and sent once they commit. The asend()
    must not wait for a batch behind the very batch that is routing its caller."""
    settings.SMSROUTER_APPS = [f"tests.test_groupcommit.{app}"]
    try:
        async with asyncio.timeout(5):  # a deadlock fails here rather than hanging the run
            await asyncio.gather(*(aincoming("mem", f"+{n}", f"hi {n}") for n in range(3)))
    finally:
        _unblock(outbox.sends)
    assert sorted(m.text for m in locmem.outbox) == sorted(
        [f"notified of hi {n}" for n in range(3)] + ["ok"] * 3)


def _unblock(group):
    """Cancel the batch in flight of `group` on this loop, if one is stuck, so that the
    thread waiting for it goes on and the test's teardown can use the database."""
    queue = group._queues.get(asyncio.get_running_loop())
    if queue is not None and queue.task is not None:
        queue.task.cancel()


class RaisingCallbackApp(smsrouter.App):
    """Asks, while its message is routed, for a call after the commit that raises, as a
    project's own notification might; not robust, so Django raises it out of the commit."""

    def handle(self, msg):
        def notify():
            raise ConnectionError("mail server down")

        transaction.on_commit(notify)
        return False


@pytest.mark.asyncio
async def test_a_callback_raising_after_the_commit_stores_nothing_twice(
        async_db, batch_apps, server_loop, settings, caplog):
    settings.SMSROUTER_APPS = ["tests.test_groupcommit.RaisingCallbackApp",
                               "smsrouter.contrib.echo.EchoApp"]
    msgs = await asyncio.gather(*(aincoming("mem", f"+{n}", f"echo {n}") for n in range(3)))
    assert sorted(msg.text for msg in msgs) == ["echo 0", "echo 1", "echo 2"]
    assert await Message.objects.filter(direction="in").acount() == 3
    assert await Message.objects.filter(direction="out").acount() == 3
    assert "accepting them one by one" not in caplog.text
    assert "mail server down" in caplog.text
