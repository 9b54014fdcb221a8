"""submit_sm per second from SmppBackend.send() to the fake SMSC, over loopback.

    DJANGO_SETTINGS_MODULE=tests.settings python bench/smpp_submit.py [--messages 2000]

Measures the link alone (the codec, the window of `concurrency` submits in flight, the
pacing): messages are built in memory, no message row is written. The bind takes its
lease in the database (one bind per account across processes), so the script migrates a
database of its own, in a temporary file, first.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
_folder = tempfile.TemporaryDirectory()
os.environ["SMSROUTER_TEST_DATABASE_URL"] = f"sqlite:///{_folder.name}/bench.sqlite3"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)

from smsrouter.backends.smpp import SmppBackend  # noqa: E402
from smsrouter.messages import OutgoingMessage  # noqa: E402
from tests.smsc import FakeSmsc  # noqa: E402


async def run(count: int, concurrency: int, text: str) -> None:
    smsc = FakeSmsc()
    await smsc.start()
    backend = SmppBackend("bench", host="127.0.0.1", port=smsc.port, system_id="smsrouter",
                          password="secret", throughput=1_000_000, concurrency=concurrency)
    bound = asyncio.Event()
    backend.state_listeners.append(lambda state, detail: state == "bound" and bound.set())
    await backend.activate()
    await asyncio.wait_for(bound.wait(), 10)
    connection = SimpleNamespace(identity="+255700000001", backend=SimpleNamespace(name="bench"))
    messages = [OutgoingMessage(text, connection) for _ in range(count)]  # type: ignore[arg-type]
    start = time.perf_counter()
    outcomes = await backend.send(messages)
    elapsed = time.perf_counter() - start
    await backend.deactivate()
    await smsc.close()
    failed = [outcome for outcome in outcomes if not outcome.sent or outcome.external_id is None]
    print(f"{count} submit_sm, window {concurrency}: {elapsed:.2f} s, "
          f"{len(smsc.submitted) / elapsed:.0f} submit_sm/s ({len(failed)} failed)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--text", default="Your code is 123456")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.messages, arguments.concurrency, arguments.text))
