"""Test speed: the time one `receive()` takes in each project's own test harness.

A project's test suite is where its developers meet the router most often, so the cost
of one simulated SMS there sets how many scenarios a suite can afford. Each side runs N
receives through echo inside one test, timed inside the test so that neither pytest's
nor Django's start-up counts:

* smsrouter: the `sms` fixture of its pytest plugin, run by pytest with the project's
  own configuration (pyproject.toml, DJANGO_SETTINGS_MODULE=tests.settings: in-memory
  SQLite), from a test module generated for the run;
* RapidSMS 2.2: `RapidTest` (a Django TestCase with its TestRouter), its echo handler and
  its messagelog app, so both sides store the message and its reply; run in its own
  virtualenv by bench/peer_rapidsms_harness.py.

Usage: .venv/bin/python bench/test_speed.py [-n 500] [-r 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import rows
from routing_vs_rapidsms import peer_python

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600

TEST_MODULE = '''
import os
import time
from pathlib import Path

import pytest


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_receives(sms):
    """Echo answers each of N messages; the seconds they took go to BENCH_OUT."""
    count = int(os.environ["BENCH_COUNT"])
    sms.receive("echo warm")
    started = time.perf_counter()
    for n in range(count):
        assert sms.receive(f"echo {n}", identity=f"+1555{n % 50:07d}").texts() == [str(n)]
    Path(os.environ["BENCH_OUT"]).write_text(repr(time.perf_counter() - started))
'''


def ours(count: int) -> float:
    """Seconds for `count` receives under pytest, as `make test` would run them."""
    with tempfile.TemporaryDirectory(prefix="smsrouter-testspeed-") as folder:
        module, out = Path(folder) / "test_bench_receive.py", Path(folder) / "seconds"
        module.write_text(TEST_MODULE)
        env = {**os.environ, "BENCH_COUNT": str(count), "BENCH_OUT": str(out),
               "PYTHONPATH": str(ROOT)}
        rows.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), str(module)],
                 cwd=ROOT, env=env, timeout=TIMEOUT)
        return float(out.read_text())


def peer(count: int) -> float:
    """Seconds for `count` receives in RapidSMS's RapidTest, from its own virtualenv."""
    out = rows.run([peer_python(), "bench/peer_rapidsms_harness.py", str(count)],
                   cwd=ROOT, timeout=TIMEOUT)
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="receives per run (default 500)")
    rows.add_arguments(parser)
    args = parser.parse_args()
    theirs = rows.median_of(args.runs, lambda: peer(args.n)) / args.n * 1000
    mine = rows.median_of(args.runs, lambda: ours(args.n)) / args.n * 1000
    rows.emit([rows.row("test speed", f"receive() through echo in the test harness, n={args.n}",
                        mine, "ms", peer=theirs, lower_is_better=True)], args.json)


if __name__ == "__main__":
    main()
