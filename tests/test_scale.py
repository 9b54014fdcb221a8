"""Out-of-band processing with real processes: PostgreSQL, Celery on Redis and on RabbitMQ,
Channels' runworker on channels_redis, a local gateway. Nothing accepted is lost, nothing is
routed twice, and a worker killed with SIGKILL mid-run changes neither.
"""

import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gateway import Answer
from tests.stack import RABBITMQ, REDIS, Stack

pytestmark = pytest.mark.processes

N = 200


@pytest.fixture
def stack_factory(tmp_path, gateway):
    stacks = []

    def make(processing, broker=REDIS):
        stack = Stack(tmp_path, processing=processing, gateway_url=gateway.url, broker=broker)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


def post_all(base, count, start=0):
    """Send `count` SMS to the web server, eight at a time; each must be accepted (200)."""
    def one(n):
        data = urllib.parse.urlencode({"from": f"+2557{n:08d}", "text": f"echo {n}"}).encode()
        with urllib.request.urlopen(f"{base}/backend/gw/", data, timeout=30) as response:
            return response.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(one, range(start, start + count))) == {200}


def all_answered(count):
    return lambda c: c.get(("in", "handled"), 0) == count and c.get(("out", "sent"), 0) == count


def assert_routed_once_and_sent(stack, gateway, count, resent_at_most=0):
    """One reply per inbound message, each reply seen by the gateway (duplicates only for
    sends a killed worker had in flight)."""
    assert stack.query("SELECT in_response_to_id FROM smsrouter_message WHERE direction = 'out' "
                       "GROUP BY in_response_to_id HAVING count(*) > 1") == []
    replies = {str(pk) for (pk,) in stack.query(
        "SELECT id FROM smsrouter_message WHERE direction = 'out'")}
    refs = Counter(request.form()["ref"] for request in gateway.requests)
    assert set(refs) == replies and len(replies) == count
    assert sum(refs.values()) - len(refs) <= resent_at_most


@pytest.mark.parametrize("broker", [REDIS, RABBITMQ], ids=["redis", "rabbitmq"])
def test_celery_routes_everything_once_even_when_a_worker_is_killed(stack_factory, gateway, broker):
    stack = stack_factory("celery", broker)
    base = stack.start_web()
    stack.start_celery_worker("first")
    stack.start_sweeper()
    post_all(base, N)
    stack.wait_for(lambda c: c.get(("in", "handled"), 0) >= N // 4, 60, "a quarter routed")
    stack.kill("first")
    at_kill = stack.counts()
    assert at_kill.get(("out", "sent"), 0) < N, "the worker finished before it was killed"
    in_flight = at_kill.get(("out", "sending"), 0)
    stack.start_celery_worker("second")
    stack.wait_for(all_answered(N), 120, f"all {N} routed and answered")
    assert_routed_once_and_sent(stack, gateway, N, resent_at_most=in_flight)


def test_a_gateway_down_for_a_while_gets_everything_once_it_is_back(stack_factory, gateway):
    stack = stack_factory("celery")
    base = stack.start_web()
    gateway.default = Answer(503, "Temporal failure, try again later")
    stack.start_celery_worker()
    post_all(base, 50)
    stack.wait_for(lambda c: c.get(("in", "handled"), 0) == 50 and len(gateway.requests) >= 100,
                   60, "every reply tried twice against the down gateway")
    assert stack.counts().get(("out", "sent"), 0) == 0
    gateway.default = Answer(202, "0: Accepted for delivery")
    stack.wait_for(all_answered(50), 60, "all replies sent once the gateway is back")
    accepted = Counter(r.form()["ref"] for r in gateway.requests[-50:])
    assert len(accepted) == 50


def test_channels_runworker_routes_and_sends(stack_factory, gateway):
    stack = stack_factory("channels")
    base = stack.start_web()
    stack.start_runworker()
    stack.start_sweeper()
    post_all(base, N)
    stack.wait_for(all_answered(N), 120, f"all {N} routed and answered")
    assert_routed_once_and_sent(stack, gateway, N)
