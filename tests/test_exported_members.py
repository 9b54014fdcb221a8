"""The public surface of `import smsrouter` is deliberate: adding or removing a name is a decision."""

import importlib

import pytest
from django.utils.module_loading import import_string

import smsrouter


def test_all_is_pinned():
    assert smsrouter.__all__ == [
        "App", "IncomingMessage", "OutgoingMessage", "SmsRouterError",
        "aincoming", "asend", "incoming", "send",
    ]


@pytest.mark.parametrize("name", smsrouter.__all__)
def test_every_public_name_resolves(name):
    assert getattr(smsrouter, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'smsrouter' has no attribute 'route'"):
        smsrouter.route  # noqa: B018


@pytest.mark.parametrize("path", [
    "smsrouter.outbox.store", "smsrouter.outbox.add", "smsrouter.outbox.add_many",
    "smsrouter.sender.send", "smsrouter.sender.send_due", "smsrouter.sender.Round",
    "smsrouter.scheduler.Scheduler", "smsrouter.periodic.run", "smsrouter.periodic.run_if_due",
    "smsrouter.router.periodic", "smsrouter.inbound.route", "smsrouter.inbound.route_ids",
    "smsrouter.dispatch.ROUTE_TASK", "smsrouter.dispatch.SEND_TASK",
    "smsrouter.recipients.messages_for", "smsrouter.testing.Harness",
])
def test_the_module_paths_the_docs_name_resolve(path):
    """The seams other modules and the commands name (the outbox, the sender, the scheduler,
    periodic jobs): moving one is a decision too."""
    assert import_string(path) is not None


@pytest.mark.parametrize("module", ["workers", "keptloop", "intake", "outbound"])
def test_modules_that_were_replaced_are_gone(module):
    """No shim keeps old imports half-working: they fail at once, by name."""
    with pytest.raises(ModuleNotFoundError, match=f"smsrouter.{module}"):
        importlib.import_module(f"smsrouter.{module}")
