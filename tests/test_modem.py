"""The GSM modem bridge end to end: a simulated modem on a pseudo-terminal, the real
`smsrouter-modem` process, and a real server process, over real HTTP.

The server is the demo's ASGI application under uvicorn (tests/modem_settings.py) on a
SQLite file; the test reads that file. The router goes down by killing its process and
comes back on the same port; the modem goes away by closing its pty.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from smsrouter import checks
from smsrouter.modem import cli
from tests.stack import Stack, uvicorn

TOKEN = "m0dem-s3cret"
PHONE = "+255700000001"
TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def socket_on(port: int) -> socket.socket:
    """A listening loopback socket on `port`, for the server to come back on after a kill."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    return sock


class Deployment:
    """The server, the bridge and the modem they share, with ways to break each."""

    def __init__(self, tmp_path: Path, modem) -> None:
        self.modem = modem
        self.tmp = tmp_path
        self.bridge_port, self.web_port = free_port(), free_port()
        self.stack = Stack(tmp_path, processing="inline", gateway_url="http://127.0.0.1:9",
                           broker=None, sqlite=tmp_path / "db.sqlite3",
                           settings="tests.modem_settings",
                           env={"BRIDGE_URL": f"http://127.0.0.1:{self.bridge_port}",
                                "MODEM_TOKEN": TOKEN})

    def start_web(self) -> None:
        sock = socket_on(self.web_port)
        self.stack.start("web", *uvicorn(sock, "--no-access-log", "--log-level", "warning"),
                         pass_fds=(sock.fileno(),))
        sock.close()

    def bridge_command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "smsrouter.modem.cli", "--device", str(self.modem.link),
                "--router-url", f"http://127.0.0.1:{self.web_port}/backend/modem/",
                "--token", TOKEN, "--listen", f"127.0.0.1:{self.bridge_port}",
                "--spool", str(self.tmp / "spool.json"), "--max-backoff", "0.5",
                "--timeout", "1", "--poll", "1", *extra]

    def start_bridge(self) -> None:
        self.stack.start("bridge", *self.bridge_command())

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.bridge_port}/health",
                                        timeout=5) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:
            return json.load(error)
        except OSError:
            return {}

    def wait_ready(self) -> None:
        self.stack.wait_until(self.health, lambda h: h.get("modem") == "ready"
                              and h.get("registered"), TIMEOUT, "the bridge ready")

    def rows(self, sql: str) -> list[tuple]:
        return self.stack.query(sql)

    def messages(self, direction: str) -> list[tuple[str, str]]:
        return self.rows(f"SELECT text, status FROM smsrouter_message WHERE direction = "
                         f"'{direction}' ORDER BY id")

    def wait_messages(self, direction: str, done, what: str) -> list[tuple[str, str]]:
        return self.stack.wait_until(lambda: self.messages(direction), done, TIMEOUT, what)

    def wait_sent(self, count: int) -> list[dict]:
        return self.stack.wait_until(self.modem.sent, lambda sent: len(sent) >= count,
                                     TIMEOUT, f"{count} SMS sent through the modem")

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def deployment(tmp_path, modem):
    deployed = Deployment(tmp_path, modem)
    try:
        deployed.start_web()
        deployed.start_bridge()
        deployed.wait_ready()
        yield deployed
    finally:
        deployed.close()


def replied(count: int):
    return lambda rows: len(rows) >= count and all(status == "sent" for _, status in rows)


@pytest.mark.parametrize(("text", "reply"), [
    ("echo hi [there] €5", "hi [there] €5"),       # GSM-7 with its extension table
    ("echo Habari 👋🏾 ዜና", "Habari 👋🏾 ዜና"),     # UCS-2, emoji among it
])
def test_an_sms_is_routed_and_the_reply_leaves_through_the_modem(deployment, text, reply):
    deployment.modem.deliver(PHONE, text)
    deployment.wait_messages("out", replied(1), "the reply sent")
    assert deployment.messages("in") == [(text, "handled")]
    (sent,) = deployment.wait_sent(1)
    assert (sent["to"], sent["text"]) == (PHONE, reply)
    deployment.stack.wait_until(deployment.modem.sim, lambda sim: sim == [], TIMEOUT,
                                "the SMS deleted from the SIM")


def test_long_texts_are_joined_in_and_split_out(deployment):
    text = "echo " + " ".join(["Long reports from the clinic arrive as parts."] * 5)
    deployment.modem.deliver(PHONE, text)
    deployment.wait_messages("out", replied(1), "the reply sent")
    assert deployment.messages("in") == [(text, "handled")]
    parts = deployment.wait_sent(2)
    assert len(parts) == 2 and {p["concat"]["reference"] for p in parts} == {
        parts[0]["concat"]["reference"]}
    assert "".join(p["text"] for p in sorted(parts, key=lambda p: p["concat"]["seqnum"])) == (
        text.removeprefix("echo "))


def test_status_reports_mark_the_reply_delivered(deployment):
    deployment.modem.deliver(PHONE, "echo report me")
    deployment.wait_messages("out", replied(1), "the reply sent")
    (sent,) = deployment.wait_sent(1)
    assert sent["srr"] is True
    deployment.modem.report(sent["mr"], 0)
    deployment.wait_messages("out", lambda rows: rows == [("report me", "delivered")],
                             "the reply delivered")


def test_sms_that_arrive_while_the_router_is_down_wait_on_the_sim_and_arrive_once(deployment):
    """The server killed, three SMS, then the bridge killed too and both restarted: each
    SMS is routed once, none is lost, and the SIM is empty at the end."""
    deployment.stack.kill("web")
    texts = [f"echo down {n}" for n in range(3)]
    for text in texts:
        deployment.modem.deliver(PHONE, text)
    deployment.stack.wait_until(lambda: deployment.health().get("spool", {}).get("inbound"),
                                lambda n: n == 3, TIMEOUT, "three SMS spooled")
    assert len(deployment.modem.sim()) == 3  # not deleted while the router cannot have them
    deployment.stack.kill("bridge")
    deployment.start_bridge()
    deployment.wait_ready()
    deployment.start_web()
    deployment.wait_messages("out", replied(3), "three replies sent")
    assert sorted(deployment.messages("in")) == [(text, "handled") for text in texts]
    deployment.stack.wait_until(deployment.modem.sim, lambda sim: sim == [], TIMEOUT,
                                "the SIM emptied")
    assert sorted(s["text"] for s in deployment.wait_sent(3)) == [f"down {n}" for n in range(3)]


def test_an_sms_whose_indication_was_lost_is_found_on_the_sim(deployment):
    deployment.modem.deliver(PHONE, "echo found anyway", lost=True)
    deployment.wait_messages("out", replied(1), "the reply sent")
    assert deployment.messages("in") == [("echo found anyway", "handled")]


def test_an_unplugged_modem_is_opened_again_when_it_is_back(deployment):
    deployment.modem.unplug()
    deployment.stack.wait_until(deployment.health, lambda h: h.get("modem") == "reopening",
                                TIMEOUT, "the bridge noticing the modem gone")
    deployment.modem.plug()
    deployment.wait_ready()
    deployment.modem.deliver(PHONE, "echo back again")
    deployment.wait_messages("out", replied(1), "the reply sent")
    assert [s["text"] for s in deployment.wait_sent(1)] == ["back again"]


def test_a_modem_that_stops_answering_is_opened_again_and_nothing_it_holds_is_lost(deployment):
    deployment.modem.hang(True)
    deployment.modem.deliver(PHONE, "echo after the hang")  # its +CMTI, then silence
    deployment.stack.wait_until(deployment.health, lambda h: h.get("modem") == "reopening",
                                TIMEOUT, "the bridge giving up on the silent modem")
    assert len(deployment.modem.sim()) == 1
    deployment.modem.hang(False)
    deployment.wait_messages("out", replied(1), "the reply sent")
    assert deployment.messages("in") == [("echo after the hang", "handled")]
    assert [s["text"] for s in deployment.wait_sent(1)] == ["after the hang"]


def test_no_network_holds_the_reply_until_the_modem_is_registered_again(deployment):
    """The modem's +CMS ERROR: 331 is answered 503, so the outbox tries again; the bridge
    polls the registration more often meanwhile, and sends once it is back."""
    deployment.modem.network(False)
    deployment.modem.deliver(PHONE, "echo later")
    deployment.stack.wait_until(
        lambda: deployment.rows("SELECT error FROM smsrouter_message WHERE direction = 'out'"),
        lambda rows: rows and "no network" in rows[0][0], TIMEOUT, "the send refused for now")
    deployment.modem.network(True)
    deployment.wait_messages("out", replied(1), "the reply sent once registered")


def test_a_wrong_pin_ends_the_bridge_with_a_clear_error_and_no_second_try(tmp_path, modem_with_pin):
    command = [sys.executable, "-m", "smsrouter.modem.cli", "--device",
               str(modem_with_pin.link), "--pin", "0000", "--router-url",
               "http://127.0.0.1:9/backend/modem/", "--token", TOKEN,
               "--listen", f"127.0.0.1:{free_port()}", "--spool", str(tmp_path / "s.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert "the SIM refused the PIN" in done.stderr
    assert "+CME ERROR: 16 (incorrect password)" in done.stderr
    assert modem_with_pin.pin_attempts() == 1


def test_the_bridge_imports_no_django():
    """It runs on the modem's machine with only its extra installed."""
    code = ("import sys, smsrouter.modem.cli, smsrouter.modem.bridge, smsrouter.modem.http; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_the_pages_settings_and_commands_are_what_the_code_takes(settings):
    """docs/backends/modem.md: its settings block passes check, and each command line it
    shows parses as the bridge's, with the exit status its units leave alone."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "backends" / "modem.md").read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
    namespace = {"INSTALLED_BACKENDS": {}}
    exec(block, namespace)
    settings.INSTALLED_BACKENDS = namespace["INSTALLED_BACKENDS"]
    assert [e.id for e in checks.check_backends()] == []
    commands = [" ".join(match.replace("\\\n", " ").split()) for match in re.findall(
        r"(?:^|command=|ExecStart=)\S*smsrouter-modem ((?:.+\\\n|.+\n(?=    --))*.+)", page,
        re.M)]
    assert len(commands) == 3
    for command in commands:
        options = cli.parse(shlex.split(command.replace("<token>", "T")))
        assert options.router_url.endswith("/backend/modem/")
    assert "exitcodes=0,2" in page and "RestartPreventExitStatus=2" in page
    assert cli.FATAL == 2
