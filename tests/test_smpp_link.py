"""The SMPP link against a slow, hung or odd SMSC: no second SMS, reasons in every error,
a hung SMSC found by its enquire_link deadline, receipts whose id is written otherwise."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.core.checks import Error, Warning

import smsrouter
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome
from smsrouter.backends.smpp import SmppBackend, release_bind, take_bind
from smsrouter.dispatch import Duties
from smsrouter.models import Lease
from smsrouter.scheduler import Scheduler
from smsrouter.smpp import client
from smsrouter.smpp.pdu import Command
from tests.test_backend_smpp import TIMEOUT, TO, message, stored, until, within

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def config(settings, smsc) -> dict:
    """The backend's options, to change before `link` binds it."""
    options = {"ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "127.0.0.1",
               "port": smsc.port, "system_id": "smsrouter", "password": "secret",
               "throughput": 1000, "reconnect_backoff": 0.05}
    settings.INSTALLED_BACKENDS = {"smpp": options}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.SMSROUTER_SEND_BACKOFF = 0.01
    settings.SMSROUTER_SEND_BACKOFF_MAX = 0.01
    settings.SMSROUTER_SWEEP_EVERY = 0.05
    return options


@pytest.fixture
def states() -> asyncio.Queue:
    return asyncio.Queue()


@pytest_asyncio.fixture
async def link(config, smsc, states) -> AsyncIterator[SmppBackend]:
    """The backend with `config`, bound to the fake SMSC in this test's loop."""
    instance = backends["smpp"]
    assert isinstance(instance, SmppBackend)
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    assert (await within(states.get()))[0] == "bound"
    yield instance
    await instance.deactivate()


@contextlib.asynccontextmanager
async def sending() -> AsyncIterator[None]:
    """The bind's scheduler, as smsrouter_connect runs it."""
    running = Scheduler(Duties(("smpp",), sweeps=False, periodic=False))
    await running.start()
    try:
        yield
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def scheduler(link, async_db) -> AsyncIterator[None]:
    async with sending():
        yield


async def still_pending(task: asyncio.Task, seconds: float) -> None:
    """Fail unless `task` is still running `seconds` from now."""
    done, _ = await asyncio.wait([task], timeout=seconds)
    assert not done, task.result()


def jump(monkeypatch, seconds: float) -> None:
    """Move the running loop's clock on by `seconds`: its timers due by then fire."""
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "time", lambda real=loop.time: real() + seconds)


@pytest.mark.asyncio
async def test_a_slow_submit_sm_resp_is_waited_for_not_sent_again(link, smsc, monkeypatch):
    """Past RESPONSE_TIMEOUT (which once timed the submit out and queued it again), a
    bound link keeps waiting, up to submit_timeout: one SMS, one id."""
    smsc.hold(Command.SUBMIT_SM)
    sending = asyncio.create_task(link.send([message("slow")]))
    await within(smsc.held.get())
    jump(monkeypatch, client.RESPONSE_TIMEOUT + 1)
    await still_pending(sending, 0.1)
    smsc.release()
    [sub] = smsc.submitted
    assert await within(sending) == [Outcome(external_id=sub.message_id)]


@pytest.mark.asyncio
async def test_no_submit_sm_resp_by_submit_timeout_fails_it_without_a_resend(config, smsc):
    config["submit_timeout"] = 0.05
    instance = backends["smpp"]
    await instance.activate()
    try:
        await within(smsc.binds.get())
        smsc.hold(Command.SUBMIT_SM)
        [outcome] = await within(instance.send([message("hung")]))
    finally:
        await instance.deactivate()
    assert not outcome.temporary and len(smsc.submitted) == 1
    assert outcome.error == (
        "SMPP: not sent again, as the SMSC may have taken it: no answer to submit_sm in "
        f"0.05 s from 127.0.0.1:{smsc.port} (TimeoutError)")


@pytest.mark.asyncio
async def test_a_drop_before_submit_sm_resp_sends_it_again_as_a_counted_attempt(
        link, smsc, scheduler):
    smsc.hold(Command.SUBMIT_SM)
    [queued] = await smsrouter.asend("cut off", TO, backend="smpp")
    await within(smsc.held.get())
    [row] = await stored(pk=queued.id)()
    assert (row.status, row.attempts) == ("sending", 1)
    smsc.holding.clear()
    smsc.drop()
    [row] = await until(stored(pk=queued.id), lambda rows: rows[0].status == "sent")
    first, second = smsc.submitted
    assert (row.attempts, row.error, row.external_id) == (2, "", second.message_id)


@pytest.mark.asyncio
async def test_the_dropped_submits_error_says_why(link, smsc):
    smsc.hold(Command.SUBMIT_SM)
    sending = asyncio.create_task(link.send([message("cut off")]))
    await within(smsc.held.get())
    smsc.drop()
    [outcome] = await within(sending)
    assert outcome == Outcome(temporary=True, error=(
        f"SMPP: no submit_sm_resp: link to 127.0.0.1:{smsc.port} dropped"))


@pytest.mark.asyncio
async def test_a_bind_that_times_out_says_so(config, smsc, states, monkeypatch):
    monkeypatch.setattr(client, "RESPONSE_TIMEOUT", 0.05)
    smsc.hold(*client_binds())
    instance = backends["smpp"]
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    try:
        state, detail = await within(states.get())
    finally:
        await instance.deactivate()
    assert state == "reconnecting"
    assert detail.startswith(f"bind failed: no answer to bind_transceiver in 0.05 s from "
                             f"127.0.0.1:{smsc.port} (TimeoutError); again in ")


def client_binds() -> tuple[Command, ...]:
    return (Command.BIND_TRANSCEIVER, Command.BIND_TRANSMITTER, Command.BIND_RECEIVER)


@pytest.mark.asyncio
async def test_a_hung_smsc_is_found_by_its_enquire_link_deadline(config, smsc, states):
    """Well within the test's TIMEOUT, which the old fixed 10 s wait would pass."""
    config.update(enquire_link=0.05, enquire_link_timeout=0.05)
    instance = backends["smpp"]
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    try:
        assert (await within(states.get()))[0] == "bound"
        smsc.hold(Command.ENQUIRE_LINK)
        async with asyncio.timeout(TIMEOUT / 2):
            state, detail = await states.get()
    finally:
        await instance.deactivate()
    assert state == "reconnecting"
    assert detail.startswith(f"hung: no answer to enquire_link in 0.05 s from "
                             f"127.0.0.1:{smsc.port}; again in ")


@pytest.mark.asyncio
@pytest.mark.parametrize(("receipt_id_format", "written"), [
    ("hex_to_decimal", lambda given: str(int(given, 16))),
    ("decimal_to_hex", lambda given: f"{int(given):x}"),
    ("as_is", lambda given: given),
])
async def test_a_receipt_id_written_otherwise_finds_its_message(config, smsc, async_db,
                                                                receipt_id_format, written):
    config["receipt_id_format"] = receipt_id_format
    if receipt_id_format == "decimal_to_hex":
        smsc.decimal_ids = True
    instance = backends["smpp"]
    await instance.activate()
    try:
        await within(smsc.binds.get())
        async with sending():
            [queued] = await smsrouter.asend("receipted", TO, backend="smpp")
            [row] = await until(stored(pk=queued.id), lambda rows: rows[0].status == "sent")
        smsc.receipt(written(row.external_id))
        await within(smsc.answers.get())
        [row] = await stored(pk=queued.id)()
    finally:
        await instance.deactivate()
    assert row.status == "delivered"


@pytest.mark.asyncio
async def test_a_receipt_id_that_is_no_number_is_answered_and_ignored(config, smsc, async_db):
    config["receipt_id_format"] = "hex_to_decimal"
    instance = backends["smpp"]
    await instance.activate()
    try:
        await within(smsc.binds.get())
        smsc.receipt("not-a-number")
        assert (await within(smsc.answers.get())).command_status == 0
    finally:
        await instance.deactivate()


def test_the_new_options_are_checked():
    errors = SmppBackend.check_config("smpp", {
        "host": "h", "port": 2775, "receipt_id_format": "octal", "submit_timeout": 0,
        "enquire_link_timeout": -1, "password": "ninechars", "system_id": "é"})
    assert [(type(e), e.id) for e in errors] == [
        (Error, "smsrouter.E072"), (Error, "smsrouter.E072"), (Error, "smsrouter.E075"),
        (Warning, "smsrouter.W071"), (Error, "smsrouter.E076")]
    assert SmppBackend.check_config("smpp", {
        "host": "h", "port": 2775, "password": "12345678", "receipt_id_format": "as_is",
        "submit_timeout": 60, "enquire_link_timeout": 5}) == []


@pytest.mark.asyncio
async def test_a_bind_leased_by_another_process_is_not_made_until_it_is_given_up(
        config, smsc, states, async_db):
    """As `make run`'s server and `smsrouter_connect` would both bind one account."""
    assert await sync_to_async(take_bind)("smpp", "elsewhere:1", 600) == ""
    instance = SmppBackend("smpp", **{k.lower(): v for k, v in config.items() if k != "ENGINE"})
    instance.state_listeners.append(lambda state, detail: states.put_nowait((state, detail)))
    await instance.activate()
    try:
        state, detail = await within(states.get())
        assert (state, detail.split(";")[0]) == ("reconnecting", "bound by elsewhere:1 (its lease)")
        assert smsc.binds.empty()
        await sync_to_async(release_bind)("smpp", "elsewhere:1")
        await within(smsc.binds.get())
        while (state := (await within(states.get()))[0]) != "bound":
            assert state == "reconnecting"
        [lease] = await sync_to_async(list)(Lease.objects.all())
        assert lease.holder == instance.holder
    finally:
        await instance.deactivate()


def test_a_submit_timeout_the_sweep_would_cut_short_is_an_error(settings):
    settings.SMSROUTER_RECOVER_AFTER = 60
    [error] = SmppBackend.check_config("smpp", {"host": "h", "port": 2775})
    assert (type(error), error.id) == (Error, "smsrouter.E077")
    assert SmppBackend.check_config("smpp", {"host": "h", "port": 2775, "submit_timeout": 30}) == []



@pytest.mark.asyncio
@pytest.mark.parametrize(("stats", "status"), [
    ({1: "DELIVRD"}, "sent"),  # the first part's receipt alone is not the message's
    ({3: "DELIVRD", 1: "DELIVRD", 2: "DELIVRD"}, "delivered"),
    ({3: "UNDELIV"}, "failed"),
    ({1: "DELIVRD", 2: "EXPIRED", 3: "DELIVRD"}, "failed"),
])
async def test_a_long_messages_receipts_count_for_every_part(link, smsc, scheduler, stats,
                                                             status):
    [queued] = await smsrouter.asend("ሰላም ለዓለም። " * 15, TO, backend="smpp")
    await until(stored(pk=queued.id), lambda rows: rows[0].status == "sent")
    for number, stat in stats.items():
        smsc.receipt(smsc.submitted[number - 1].message_id, stat)
        await within(smsc.answers.get())
    [row] = await stored(pk=queued.id)()
    assert len(smsc.submitted) == 3 and (row.status, row.external_id) == (
        status, smsc.submitted[0].message_id)
