"""Inbound messages per second through Celery mode, end to end, and how many were lost or
duplicated (both must be 0).

N SMS are posted over HTTP to the demo under uvicorn (8 clients at once), routed by Celery
workers on PostgreSQL and the chosen broker, and each echo reply is sent to a local gateway
stand-in. The clock stops when the gateway has every reply. The baseline, measured in the
same run, is the same N through inline mode on the same database: the price of handing
work to workers. Needs PostgreSQL, Redis and RabbitMQ as the tests do; run by hand.

Usage: .venv/bin/python bench/celery_throughput.py [-n 5000] [--broker redis|rabbitmq]
       [--concurrency 2]
"""

import argparse
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.gateway import FakeGateway  # noqa: E402
from tests.stack import RABBITMQ, REDIS, Stack  # noqa: E402


def post_all(base: str, count: int) -> None:
    def one(n: int) -> int:
        data = urllib.parse.urlencode({"from": f"+2557{n:08d}", "text": f"echo {n}"}).encode()
        with urllib.request.urlopen(f"{base}/backend/gw/", data, timeout=60) as response:
            return response.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(pool.map(one, range(count)))
    assert statuses == {200: count}, statuses


def run(processing: str, count: int, broker: str, concurrency: int) -> tuple[float, dict]:
    """Time `count` messages from the first POST until the gateway has every reply."""
    gateway = FakeGateway()
    logs = tempfile.mkdtemp(prefix=f"smsrouter-bench-{processing}-")
    print(f"{processing}: process logs in {logs}")
    stack = Stack(Path(logs), processing=processing, gateway_url=gateway.url, broker=broker)
    try:
        base = stack.start_web()
        if processing == "celery":
            stack.start_celery_worker(concurrency=concurrency)
        started = time.perf_counter()
        post_all(base, count)
        accepted = time.perf_counter() - started
        stack.wait_for(lambda c: c.get(("out", "sent"), 0) >= count, 600, "all replies")
        elapsed = time.perf_counter() - started
        refs = Counter(request.form()["ref"] for request in gateway.requests)
        routed = stack.query("SELECT count(*), count(DISTINCT in_response_to_id) "
                             "FROM smsrouter_message WHERE direction = 'out'")[0]
        handled = stack.counts().get(("in", "handled"), 0)
        return elapsed, {"accepted_s": accepted, "lost": count - handled,
                         "routed_twice": routed[0] - routed[1],
                         "gateway_duplicates": sum(refs.values()) - len(refs)}
    finally:
        stack.close()
        gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    args = parser.parse_args()
    broker = REDIS if args.broker == "redis" else RABBITMQ
    baseline, base_facts = run("inline", args.n, broker, args.concurrency)
    celery, facts = run("celery", args.n, broker, args.concurrency)
    for label, elapsed, info in [("inline (baseline)", baseline, base_facts),
                                 (f"celery on {args.broker}", celery, facts)]:
        print(f"{label:<22} {args.n} msgs {elapsed:7.2f} s {args.n / elapsed:7.0f} msg/s "
              f"(all accepted after {info['accepted_s']:.2f} s) lost={info['lost']} "
              f"routed_twice={info['routed_twice']} gateway_duplicates={info['gateway_duplicates']}")
    print(f"ratio celery / inline: {celery / baseline:.2f}x the time")


if __name__ == "__main__":
    main()
