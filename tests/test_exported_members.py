"""The public surface of `import smsrouter` is deliberate: adding or removing a name is a decision."""

import pytest

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
