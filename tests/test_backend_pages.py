"""The aggregator pages (docs/backends/{africastalking,infobip,vonage}.md) do what they say.

A user moving from RapidSMS or Courier pastes the page's settings block and copies its
callback URLs into the provider's dashboard. So each block is executed as it is written
and put through `manage.py check`, and every `/backend/` URL the page names is taken from
the page, with its `<name>` and `<token>` filled in from that block. An inbound message
and a delivery report, as the provider sends them, are then posted to exactly those paths.
A wrong path, a missing `?token=`, or a signature method that the block does not set
fails here before it fails for a user.
"""

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.checks import run_checks
from django.test import Client
from vonage_http_client import Auth

from smsrouter.models import Backend, Connection, Message
from tests.test_backend_africastalking import INBOUND as AT_INBOUND
from tests.test_backend_infobip import MO, forward
from tests.test_backend_infobip import report as infobip_report
from tests.test_backend_vonage import INBOUND as VONAGE_INBOUND
from tests.test_backend_vonage import md5hash

DOCS = Path(__file__).resolve().parent.parent / "docs" / "backends"
PAGES = ["africastalking", "infobip", "vonage"]
#: A fenced block of Python: what the page asks the user to paste into settings.py.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: A URL the page asks the user to give the provider: any absolute URL through /backend/.
#: A placeholder such as `<your host>` may hold a space.
BACKEND_URL = re.compile(r"https?://(?:<[^>]*>|[^\s`<)])*/backend/[^\s`)]*")
ENVIRON = re.compile(r"""os\.environ\[["']([A-Z0-9_]+)["']\]""")
PHONE = "+255700000001"


def page_text(page: str) -> str:
    return (DOCS / f"{page}.md").read_text()


def settings_blocks(page: str) -> list[str]:
    blocks = [block for block in PYTHON_BLOCK.findall(page_text(page))
              if "INSTALLED_BACKENDS" in block]
    assert blocks, f"{page}.md has no ```python block that sets INSTALLED_BACKENDS"
    return blocks


def run_block(block: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The backends the block defines, run as the tail of a startproject settings.py.

    Such a file imports no `os`, so a block that reads the environment must import it
    itself; the variables it reads get a value each, as the user would export them.
    """
    for variable in ENVIRON.findall(block):
        monkeypatch.setenv(variable, f"{variable.lower()}-value")
    namespace: dict[str, Any] = {"INSTALLED_BACKENDS": {}}
    exec(compile(block, "<settings block>", "exec"), namespace)
    return namespace["INSTALLED_BACKENDS"]


def page_backend(page: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """The name and options of the one backend the page's first settings block defines."""
    (name, config), = run_block(settings_blocks(page)[0], monkeypatch).items()
    return name, config


def callback_paths(page: str, name: str, config: dict[str, Any]) -> dict[str, str]:
    """Path and query of each callback URL on the page, by webhook ("inbound", "status").

    `<name>` is the block's backend name and `<token>` its token. Every URL on the page
    must come down to the same two, so that no table row or example teaches another.
    """
    paths: dict[str, set[str]] = {"inbound": set(), "status": set()}
    for url in BACKEND_URL.findall(page_text(page)):
        url = url.replace("<name>", name).replace("<token>", str(config.get("token", "")))
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        paths["status" if parts.path.endswith("/status/") else "inbound"].add(path)
    assert all(len(found) == 1 for found in paths.values()), (
        f"{page}.md should name one inbound and one status URL, not {paths}")
    return {webhook: found.pop() for webhook, found in paths.items()}


def vonage_signed(params: dict[str, str], config: dict[str, Any]) -> dict[str, str]:
    """The parameters signed as Vonage signs them, by the block's method and secret: an
    HMAC by Vonage's own library, md5hash by the recipe of its guide."""
    params = {**params, "timestamp": str(int(time.time()))}
    method = config.get("signature_method", "md5hash")
    secret = config["signature_secret"]
    if method == "md5hash":
        return {**params, "sig": md5hash(params, secret)}
    signer = Auth(api_key=config["api_key"], signature_secret=secret, signature_method=method)
    return {**params, "sig": signer.sign_params(dict(params))}


def post_inbound(page: str, client: Client, path: str, config: dict[str, Any]) -> Any:
    """An SMS from PHONE saying "echo hi", in the provider's documented fields."""
    if page == "africastalking":
        return client.post(path, {**AT_INBOUND, "from": PHONE})
    if page == "infobip":
        return forward(client, {**MO, "from": PHONE.removeprefix("+")}, path=path)
    return client.post(path, vonage_signed(
        {**VONAGE_INBOUND, "msisdn": PHONE.removeprefix("+")}, config))


def post_delivered(page: str, client: Client, path: str, config: dict[str, Any],
                   message: Message) -> Any:
    """The provider's report that `message` reached the phone."""
    if page == "africastalking":
        return client.post(path, {"id": message.external_id, "status": "Success",
                                  "phoneNumber": PHONE, "networkCode": "63902",
                                  "retryCount": "0"})
    if page == "infobip":
        return infobip_report(client, message, "DELIVERED", "DELIVERED_TO_HANDSET", path=path)
    return client.post(path, vonage_signed({
        "msisdn": PHONE.removeprefix("+"), "to": "447700900001", "network-code": "64002",
        "messageId": message.external_id, "client-ref": str(message.pk), "price": "0.03",
        "status": "delivered", "scts": "2601010000", "err-code": "0",
        "api-key": config["api_key"], "message-timestamp": "2026-01-01 00:00:05"}, config))


@pytest.fixture(params=PAGES)
def page(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def installed(page: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict]:
    """The page's backend installed as its block says, and no app to reply: a reply would
    go to the provider's real API."""
    name, config = page_backend(page, monkeypatch)
    settings.INSTALLED_BACKENDS = {name: config}
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return name, config


@pytest.mark.parametrize(("page", "index"), [
    (page, index) for page in PAGES for index in range(len(settings_blocks(page)))])
def test_each_settings_block_passes_manage_py_check(page, index, settings, monkeypatch):
    settings.INSTALLED_BACKENDS = run_block(settings_blocks(page)[index], monkeypatch)
    problems = [message for message in run_checks()
                if message.id and message.id.startswith("smsrouter.")]
    assert problems == []


@pytest.mark.django_db
def test_an_sms_posted_to_the_pages_inbound_url_is_stored(page, installed, client):
    name, config = installed
    response = post_inbound(page, client, callback_paths(page, name, config)["inbound"], config)
    assert response.status_code == 200, response.content
    stored = Message.objects.get(direction="in")
    assert (stored.backend.name, stored.connection.identity, stored.text) == (
        name, PHONE, "echo hi")


@pytest.mark.django_db
def test_a_report_posted_to_the_pages_status_url_moves_the_message(page, installed, client):
    name, config = installed
    connection = Connection.objects.create(
        backend=Backend.objects.create(name=name), identity=PHONE)
    message = Message.objects.create(
        direction="out", backend=connection.backend, connection=connection, text="hi",
        status="sent", external_id="0B00000A")
    if page == "infobip":  # a send through it names each message by its id
        Message.objects.filter(pk=message.pk).update(external_id=str(message.pk))
        message.refresh_from_db()
    response = post_delivered(page, client, callback_paths(page, name, config)["status"],
                              config, message)
    assert response.status_code in (200, 204), response.content
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.django_db
def test_the_pages_urls_without_their_token_or_signature_are_refused(page, installed, client):
    """The URLs pass above because of the token or signature they carry, not in spite of it."""
    name, config = installed
    for path in callback_paths(page, name, config).values():
        bare = urlsplit(path).path
        response = client.post(bare)
        assert response.status_code == 403, (bare, response.content)
