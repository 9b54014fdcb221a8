"""The headless Chromium that browser tests drive: Debian's /usr/bin/chromium through
Playwright, one per test module. A test module takes it by importing the fixture:
`from tests.browser import browser`.

Without the binary the tests skip, saying what to install; under CI they fail instead.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def site_with_staff(database: Path, settings_module: str, user: tuple[str, str]) -> dict[str, str]:
    """The environment of a served site on a fresh SQLite file (inline processing),
    migrated, with `user` (name, password) as its superuser: what a browser test logs in as.
    Also the environment for more `manage.py` commands on that database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module,
           "DATABASE_URL": f"sqlite:///{database}", "SMSROUTER_PROCESSING": "inline",
           "DJANGO_SUPERUSER_USERNAME": user[0], "DJANGO_SUPERUSER_PASSWORD": user[1],
           "DJANGO_SUPERUSER_EMAIL": f"{user[0]}@example.org"}
    for command in (["migrate", "-v", "0"], ["createsuperuser", "--noinput", "-v", "0"]):
        manage(env, *command)
    return env


def manage(env: dict[str, str], *command: str) -> None:
    subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                   timeout=120)
