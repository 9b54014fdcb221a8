"""Every fenced block of README.md is run by a test, or listed here with the reason it cannot
run in the suite: a block that is neither fails `test_every_block_is_run_or_excused`.

The blocks that set up a new project ("Adding smsrouter to your Django project", and the
pytest set-up under "Tests") are applied, word for word, by tests/test_startproject.py; the
others run here, each found by a line it holds, so each test runs the README's text as it
is today.
"""

import ast
import os
import re
import subprocess
import sys
import types
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from celery import Celery
from django.utils import timezone

import smsrouter
from smsrouter.backends import locmem
from smsrouter.models import Message
from tests.stack import serving

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ADDING = "Adding smsrouter to your Django project"
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>\S*)\s*$")
#: How the prose before a block says what to do with it, in a project: (verb, path).
INSTRUCTIONS = [
    ("append", re.compile(r"at the end of `(?P<path>[^`]+)`")),
    ("replace", re.compile(r"Replace `(?P<path>[^`]+)` with")),
    ("create", re.compile(r"(?:\bin|put an?) `(?P<path>[^`]+)`")),
]
LOCMEM = {"ENGINE": "smsrouter.backends.locmem.LocmemBackend"}


@dataclass(frozen=True)
class Block:
    line: int         # of the opening fence, 1-based
    section: str      # the "## " heading above it
    subsection: str   # the "### " heading above it within that section, or ""
    info: str         # the fence's language: "python", "sh", "ini", or ""
    text: str         # dedented by the fence's own indentation
    before: str       # the paragraph of prose just above it

    def instruction(self) -> tuple[str, str] | None:
        """What the prose above says to do with this block in a project, if anything."""
        for verb, pattern in INSTRUCTIONS:
            if match := pattern.search(self.before):
                return verb, match["path"]
        return None


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    section = subsection = ""
    prose: list[str] = []
    lines = README.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if fence := FENCE.match(line):
            indent = len(fence["indent"])
            end = index + 1
            while not FENCE.match(lines[end]):
                end += 1
            body = "\n".join(text[indent:] for text in lines[index + 1:end])
            paragraph = "\n".join(prose).strip().split("\n\n")[-1]
            blocks.append(Block(index + 1, section, subsection, fence["info"], body + "\n",
                                " ".join(paragraph.split())))
            prose = []
            index = end + 1
            continue
        if line.startswith("## "):
            section, subsection, prose = line[3:].strip(), "", []
        elif line.startswith("### "):
            subsection, prose = line[4:].strip(), []
        else:
            prose.append(line)
        index += 1
    return blocks


def project_blocks() -> list[Block]:
    """What tests/test_startproject.py applies to a new project, in README order: the
    blocks of "Adding smsrouter to your Django project" above its first subsection, then
    the blocks under "Tests" whose prose names a file to write (the pytest set-up)."""
    return [block for block in readme_blocks()
            if (block.section == ADDING and not block.subsection)
            or (block.section == "Tests" and block.instruction())]


#: How a line of each block that runs here starts, and the test that runs it.
RUN_HERE = {
    ">>> import urllib.parse, urllib.request": "test_the_urllib_example_answers_as_printed",
    "class SurveyApp(smsrouter.App):": "test_the_survey_app_routes_as_described",
    'smsrouter.send("Clinic day is Tuesday"': "test_the_sending_example_sends",
    'smsrouter.send("Clinic day tomorrow", numbers': "test_the_scheduled_send_waits_until_due",
    "@app.on_after_finalize.connect": "test_the_celery_schedule_installs_the_sweeper",
    "group = sms-service": "test_the_kannel_service_is_the_one_docs_backends_kannel_md_gives",
    "class Survey(Conversation):": "test_the_conversations_example_runs_as_written",
    'INSTALLED_APPS += ["smsrouter.contrib.conversations"]':
        "test_the_conversations_example_runs_as_written",
    "def test_survey(sms):": "test_the_conversations_example_runs_as_written",
}
#: How a line of each block that no test runs starts, and why.
NOT_RUN = {
    "make run": "builds .venv and serves until stopped; the urllib example runs against the "
                "demo served as `make run` serves it",
    "make test": "is the whole suite, this module among it",
    "class StatsApp(smsrouter.App):": "a sketch: its method's body is `...`; "
                                      "tests/test_asgi.py serves resources",
    "export DATABASE_URL=postgres": "starts PostgreSQL-, Redis- and Celery-backed processes "
                                    "that run until stopped; tests/test_scale.py starts them",
    "smsrouter/            the reusable app": "a directory listing, not code",
}


def holds(block: Block, key: str) -> bool:
    return any(line.startswith(key) for line in block.text.splitlines())


def block(key: str) -> Block:
    [found] = [block for block in readme_blocks() if holds(block, key)]
    return found


def test_every_block_is_run_or_excused():
    project = {block.line for block in project_blocks()}
    keys = [*RUN_HERE, *NOT_RUN]
    unaccounted = []
    for each in readme_blocks():
        claims = [key for key in keys if holds(each, key)]
        claims += ["tests/test_startproject.py"] if each.line in project else []
        if len(claims) != 1:
            unaccounted.append(f"README.md:{each.line} ({each.section}) is claimed by {claims}")
    assert unaccounted == [], "\n".join(unaccounted)
    assert all(key in globals() for key in RUN_HERE.values())


def test_the_project_blocks_are_what_a_project_needs():
    """What tests/test_startproject.py applies: each block says which file it goes to, but
    the commands."""
    applied = [(block.info, block.instruction()) for block in project_blocks()]
    assert applied == [
        ("python", ("append", "mysite/settings.py")),
        ("python", ("replace", "mysite/urls.py")),
        ("python", ("replace", "mysite/asgi.py")),
        ("python", ("create", "mysite/sms.py")),
        ("sh", None),
        ("ini", ("create", "pytest.ini")),
        ("python", ("create", "test_sms.py")),
    ]


@pytest.fixture(scope="module")
def demo_as_make_run_serves_it(tmp_path_factory):
    """The demo under uvicorn with lifespan on, as `make run` serves it, on a fresh SQLite."""
    database = tmp_path_factory.mktemp("readme") / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings",
           "DATABASE_URL": f"sqlite:///{database}", "SMSROUTER_PROCESSING": "inline"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, env=env, check=True, timeout=120)
    with serving(env) as (port, _):
        yield f"http://127.0.0.1:{port}"


def test_the_urllib_example_answers_as_printed(demo_as_make_run_serves_it):
    """Each `>>>` line runs against the demo; what it prints is what the README prints,
    a trailing `...` meaning "starts with"."""
    session: dict = {}
    lines = block(">>> import urllib.parse, urllib.request").text.splitlines()
    checked = 0
    for number, line in enumerate(lines):
        if not line.startswith(">>> "):
            continue
        source = line[4:].replace("http://127.0.0.1:8000", demo_as_make_run_serves_it)
        printed = lines[number + 1] if number + 1 < len(lines) else ""
        if isinstance(ast.parse(source).body[0], ast.Expr):
            answer = repr(eval(source, session))
            if printed.endswith("..."):
                assert answer.startswith(printed[:-3]), (line, answer)
            else:
                assert answer == printed, (line, answer)
            checked += 1
        else:
            exec(source, session)
    assert checked == 3


@pytest.fixture
def readme_module(monkeypatch):
    """A module `readme_example` for a block's code, so that settings can name its classes."""
    module = types.ModuleType("readme_example")
    monkeypatch.setitem(sys.modules, "readme_example", module)
    return module


def test_the_survey_app_routes_as_described(sms, settings, readme_module):
    exec(block("class SurveyApp(smsrouter.App):").text, readme_module.__dict__)
    settings.SMSROUTER_APPS = ["readme_example.SurveyApp", "smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = "default"
    assert sms.receive("survey yes").texts() == ["Thanks, your answer is recorded."]
    assert sms.receive("echo hi").texts() == ["hi"]  # not handled: later apps' handle() run
    assert sms.outbox.texts() == ["Thanks, your answer is recorded.", "hi"]


def test_the_conversations_example_runs_as_written(sms, settings, readme_module):
    """The survey, its settings lines (on the suite's settings, where the app is installed)
    and the README's own test of it, each as the README writes them."""
    exec(block("class Survey(Conversation):").text, readme_module.__dict__)
    lines = {"INSTALLED_APPS": list(settings.INSTALLED_APPS),
             "SMSROUTER_APPS": list(settings.SMSROUTER_APPS)}
    exec(block('INSTALLED_APPS += ["smsrouter.contrib.conversations"]').text, lines)
    assert set(lines["INSTALLED_APPS"]) == set(settings.INSTALLED_APPS)
    settings.SMSROUTER_APPS = lines["SMSROUTER_APPS"]
    settings.SMSROUTER_CONVERSATIONS = [path.replace("mysite.sms.", "readme_example.")
                                        for path in lines["SMSROUTER_CONVERSATIONS"]]
    test = {}
    exec(block("def test_survey(sms):").text, test)
    test["test_survey"](sms)


def run_statements(source: str, namespace: dict) -> None:
    """Each statement in turn, as a shell would: one with `await` in an event loop of its
    own (as from async code), the others as blocking code."""
    for statement in ast.parse(source).body:
        code = compile(ast.Module([statement], []), "README.md", "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if any(isinstance(node, ast.Await) for node in ast.walk(statement)):
            async def run(code=code):
                await eval(code, namespace)
            async_to_sync(run)()
        else:
            exec(code, namespace)


def test_the_sending_example_sends(transactional_db, settings):
    """Where no server runs, as in a shell, each message is sent before send() returns."""
    settings.INSTALLED_BACKENDS = {"httptester": LOCMEM}
    locmem.outbox.clear()
    [earlier] = smsrouter.send("hello", "+255700000003", backend="httptester")
    run_statements(block('smsrouter.send("Clinic day is Tuesday"').text,
                   {"smsrouter": smsrouter, "connection": earlier.connection})
    sent = [(m.text, m.connection.identity) for m in locmem.outbox][1:]
    assert sent == [("Clinic day is Tuesday", "+255700000001"),
                    ("Clinic day is Tuesday", "+255700000002"), ("Reminder", "+255700000003")]
    statuses = Message.objects.filter(direction="out").values_list("status", flat=True)
    assert set(statuses) == {"sent"}


def test_the_scheduled_send_waits_until_due(transactional_db, settings):
    settings.INSTALLED_BACKENDS = {"kannel-mtn": LOCMEM}
    locmem.outbox.clear()
    run_statements(block('smsrouter.send("Clinic day tomorrow", numbers').text, {
        "smsrouter": smsrouter, "numbers": ["+255700000001", "+255700000002"],
        "timezone": timezone, "timedelta": timedelta})
    stored = Message.objects.filter(direction="out")
    assert [m.status for m in stored] == ["queued", "queued"]
    assert all(m.due_at > timezone.now() + timedelta(hours=11) for m in stored)
    assert locmem.outbox == []


def test_the_celery_schedule_installs_the_sweeper():
    app = Celery("readme", set_as_current=False)
    namespace = {"app": app}  # kept: Celery holds its receivers by weak reference
    exec(block("@app.on_after_finalize.connect").text, namespace)
    app.finalize()
    assert "smsrouter.recover" in app.conf.beat_schedule


def test_the_kannel_service_is_the_one_docs_backends_kannel_md_gives(db, client, settings):
    """The README's sms-service group appears, line for line, in the Kannel page, and its
    get-url, filled in as Kannel fills it, stores the message; without the token, a 403."""
    service = block("group = sms-service").text
    assert service in (ROOT / "docs/backends/kannel.md").read_text()
    settings.INSTALLED_BACKENDS = {"kannel-mtn": {
        "ENGINE": "smsrouter.backends.kannel.KannelBackend", "token": "s3cret"}}
    [get_url] = re.findall(r'^get-url = "(.*)"$', service, re.MULTILINE)
    filled = {"%p": urllib.parse.quote("+255700000001"), "%b": "hello%20there", "%C": "UTF-8",
              "%c": "0", "%I": "kannel-1", "<token>": "s3cret"}
    url = urllib.parse.urlsplit(re.sub("|".join(map(re.escape, filled)),
                                       lambda match: filled[match[0]], get_url))
    assert url.path == "/backend/kannel-mtn/"
    assert client.get(f"{url.path}?{url.query}").status_code == 200
    assert Message.objects.get(direction="in").text == "hello there"
    without_token = url.query.replace("&token=s3cret", "")
    assert client.get(f"{url.path}?{without_token}").status_code == 403
