"""The README's "Adding smsrouter to your Django project", followed word for word in a
project that `django-admin startproject mysite` has just made: its blocks are taken from
README.md itself (tests/test_readme.py's project_blocks), so this fails when the README
drifts from what a project needs.

One project for the module: it is migrated, checked and served by the README's own
commands, then an SMS posted through the httptester gets its reply, stored once; the
page's CSS and JS answer; its WebSocket accepts and sends a frame; and the README's
pytest example passes inside the project.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.stack import listening_socket, stop
from tests.test_readme import ADDING, Block, project_blocks

pytestmark = pytest.mark.processes

BIN = Path(sys.executable).parent
BACKEND = "httptester"
REPLY = "Thank you Amina, you are registered."
TIMEOUT = 20


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    url: str
    check: str  # what `manage.py check` printed
    server: subprocess.Popen
    log: Path

    def open(self, path: str, data: bytes | None = None) -> tuple[int, bytes]:
        """A request to the server; if it cannot connect because the server has exited
        (a failed lifespan startup, say), a failure with the server's log."""
        try:
            with urllib.request.urlopen(self.url + path, data, timeout=TIMEOUT) as response:
                return response.status, response.read()
        except (urllib.error.URLError, ConnectionError):
            try:  # refused or reset: the server is gone, or on its way out
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise
            pytest.fail(f"uvicorn exited with {self.server.returncode}:\n"
                        f"{self.log.read_text()[-3000:]}")


def apply(block: Block, project: Path) -> None:
    """Write a block to the file its prose names, as that prose says."""
    instruction = block.instruction()
    assert instruction, f"README.md:{block.line}: the prose above names no file to write"
    verb, name = instruction
    target = project / name
    if verb == "append":
        target.write_text(target.read_text() + "\n" + block.text)
    elif verb == "replace":
        assert target.exists(), f"README.md:{block.line} replaces {name}, which is not there"
        target.write_text(block.text)
    else:
        assert not target.exists(), f"README.md:{block.line} creates {name}, which exists already"
        target.write_text(block.text)


def run(command: list[str], project: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("startproject")
    # The project's own settings, as a shell in its folder would have them: not the suite's.
    env = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    run([str(BIN / "django-admin"), "startproject", "mysite"], root, env)
    path = root / "mysite"
    setup = [block for block in project_blocks() if block.section == ADDING]
    [commands] = [block for block in setup if block.info == "sh"]
    for block in setup:
        if block is not commands:
            apply(block, path)
    check = ""
    server = None
    log_path = root / "uvicorn.log"
    log = log_path.open("wb")
    try:
        for line in commands.text.splitlines():
            argv = shlex.split(line)
            if argv[:2] == ["python", "manage.py"]:
                output = run([sys.executable, *argv[1:]], path, env)
                check = output if argv[2] == "check" else check
            else:
                assert argv[:1] == ["uvicorn"], f"README.md:{commands.line}: unknown command {line!r}"
                assert "--lifespan on" in line
                sock = listening_socket()
                server = subprocess.Popen(
                    [sys.executable, "-m", *argv, "--fd", str(sock.fileno()), "--no-access-log"],
                    cwd=path, env=env, pass_fds=[sock.fileno()], stdout=log, stderr=log)
                url = f"http://127.0.0.1:{sock.getsockname()[1]}"
                sock.close()
        assert server is not None, f"README.md:{commands.line} serves nothing"
        yield Project(path, env, url, check, server, log_path)
    finally:
        if server is not None:
            stop(server)
        log.close()


def post(project: Project, identity: str, text: str) -> bytes:
    data = urllib.parse.urlencode({"identity": identity, "text": text}).encode()
    return project.open(f"/httptester/{BACKEND}/", data)[1]


def conversation(project: Project, identity: str) -> list[tuple[str, str, str]]:
    _, body = project.open(f"/httptester/{BACKEND}/{urllib.parse.quote(identity)}/messages")
    return [(m["direction"], m["text"], m["status"]) for m in json.loads(body)["messages"]]


def test_check_finds_no_issues(project: Project) -> None:
    assert "System check identified no issues" in project.check, project.check


def test_an_sms_through_the_httptester_gets_its_reply_and_is_stored_once(project: Project) -> None:
    assert post(project, "+255700000001", "join Amina") == b"OK"
    expected = [("in", "join Amina", "handled"), ("out", REPLY, "sent")]
    deadline = time.monotonic() + TIMEOUT
    while (messages := conversation(project, "+255700000001")) != expected:
        assert time.monotonic() < deadline, f"the conversation is {messages}"
        time.sleep(0.05)


def test_the_pages_static_files_are_served(project: Project) -> None:
    status, page = project.open("/httptester/")
    assert status == 200
    html = page.decode()
    linked = (re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
              + re.findall(r'<script src="([^"]+)"', html))
    assert [Path(href).suffix for href in linked] == [".css", ".js"]
    for href in linked:
        assert project.open(urllib.parse.urljoin("/httptester/", href))[0] == 200, href


def test_the_conversations_websocket_accepts_and_sends_a_frame(project: Project) -> None:
    identity = "+255700000002"
    url = project.url.replace("http://", "ws://") + f"/ws/httptester/{BACKEND}/{identity}/"
    project.open("/httptester/")  # the server is up, or a failure with its log
    with connect(url, origin=project.url, open_timeout=TIMEOUT) as socket:
        assert post(project, identity, "echo live") == b"OK"
        frame = json.loads(socket.recv(timeout=TIMEOUT))
    assert (frame["direction"], frame["text"]) == ("in", "echo live")


def test_the_readme_pytest_example_passes_in_the_project(project: Project) -> None:
    """Its pytest.ini and test_sms.py, as the README's "Tests" section gives them."""
    tests = [block for block in project_blocks() if block.section != ADDING]
    assert len(tests) == 2
    for block in tests:
        apply(block, project.path)
    output = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                 project.path, project.env)
    assert re.search(r"\b1 passed\b", output), output
