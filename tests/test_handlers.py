"""KeywordHandler, PatternHandler and the bundled EchoApp."""

import pytest

from smsrouter.contrib.echo import HELP
from smsrouter.contrib.handlers import KeywordHandler
from smsrouter.exceptions import ConfigurationError
from smsrouter.router import resolve_app
from tests import apps


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("join Amina", ("handle", ("Amina",))),
        ("JOIN Amina", ("handle", ("Amina",))),
        ("JoIn amina juma", ("handle", ("amina juma",))),
        ("  join Amina", ("handle", ("Amina",))),
        ("join,Amina", ("handle", ("Amina",))),
        ("join;Amina", ("handle", ("Amina",))),
        ("join: Amina", ("handle", ("Amina",))),
        ("join  ,;: Amina  ", ("handle", ("Amina",))),
        ("join Amina, Juma", ("handle", ("Amina, Juma",))),
        ("join\nAmina", ("handle", ("Amina",))),
        ("register Amina", ("handle", ("Amina",))),
        ("join", ("help", ())),
        ("JOIN", ("help", ())),
        ("join ", ("help", ())),
        (" join,", ("help", ())),
        ("joiner", None),
        ("joinAmina", None),
        ("rejoin Amina", None),
        ("please join", None),
        ("", None),
    ],
)
def test_keyword_matching(text, call):
    """The keyword is a whole word at the start, case-insensitive, with `,;:` tolerated."""
    assert apps.Join.match(text) == call


class Hello(KeywordHandler):
    keyword = "hello"


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("hello,world", ("handle", ("world",))),
        ("hello", ("help", ())),
        ("hellothere", None),
    ],
)
def test_the_issues_own_keyword_examples(text, call):
    """`hello,world` → handle("world"); `hello` alone → help(); `hellothere` is no match."""
    assert Hello.match(text) == call


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("add 2 3", ("2", "3")),
        ("ADD 2 3", ("2", "3")),
        ("  add 2 3  ", ("2", "3")),
        ("add 2 3 4", None),
        ("please add 2 3", None),
        ("add two three", None),
    ],
)
def test_pattern_matching_is_a_full_case_insensitive_match(text, groups):
    """The whole text must match; groups go to handle()."""
    found = apps.Add.match(text)
    assert (found[1] if found else None) == groups


@pytest.mark.sms_apps("tests.apps.Join", "tests.apps.Add")
@pytest.mark.parametrize(
    ("text", "replies"),
    [
        ("join Amina", ["joined Amina"]),
        ("join", ["help: send JOIN <name>"]),
        ("add 2 3", ["5"]),
        ("joiner", []),
    ],
)
def test_handlers_answer_through_the_router(sms, settings, text, replies):
    """Handlers listed in SMSROUTER_APPS are routed like apps."""
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    assert sms.receive(text).texts() == replies


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("echo hello", "hello"),
        ("ECHO Hello There", "Hello There"),
        ("echo", HELP),
        ("echo,hi", "hi"),
        ("ping", "pong"),
        ("PING", "pong"),
    ],
)
def test_echo(sms, text, reply):
    """`echo <text>` → text; `echo` alone → help; `ping` → pong."""
    assert sms.receive(text).texts() == [reply]


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_echo_leaves_other_messages_to_later_apps(sms, settings):
    """`echoes` is not the echo keyword; the default reply answers it."""
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("echoes").texts() == ["Sorry"]


def test_async_handlers_are_refused_with_a_hint():
    """Handlers are synchronous; the error says to write an App instead."""
    with pytest.raises(ConfigurationError, match="Write an App with `async def handle"):
        resolve_app("tests.apps.AsyncKeyword")


def test_a_handler_without_keyword_says_so():
    """A KeywordHandler subclass that forgot `keyword` fails with its name."""

    class Forgetful(KeywordHandler):
        pass

    with pytest.raises(ConfigurationError, match="Forgetful must set `keyword`"):
        Forgetful.match("anything")


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp", "demo.sms.JoinHandler", "demo.sms.AddHandler")
def test_the_demo_handlers(sms):
    """The demo registers a contact with JOIN and adds with ADD."""
    from smsrouter.models import Connection

    assert sms.receive("join Amina", identity="+255700000001").texts() == [
        "Thank you Amina, you are registered."
    ]
    assert sms.receive("join Amina Juma", identity="+255700000001").texts() == [
        "Thank you Amina Juma, you are registered."
    ]
    assert Connection.objects.get(identity="+255700000001").contact.name == "Amina Juma"
    assert sms.receive("add 2 plus 3").texts() == ["2 + 3 = 5"]
