"""Faults against real processes in inline mode: only web servers run (uvicorn, the sender
and scheduler in their lifespan), no workers and no sweeper, on a SQLite file and on
PostgreSQL. The gateway fails, hangs and goes away; a server is SIGKILLed; two servers
share one database. Whatever a webhook acknowledged gets routed and answered, each reply
reaches the gateway once (a SIGKILL may repeat only the sends it interrupted), and the
webhook's answer never waits on the gateway.

Each test prints its figures (`-s` shows them): lost, stuck and duplicated messages.
"""

import http.client
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.gateway import Answer, FakeGateway
from tests.periodic_apps import ticks
from tests.stack import Stack

pytestmark = pytest.mark.processes

UNSETTLED = (("in", "received"), ("out", "queued"), ("out", "sending"), ("out", "failed"))


@pytest.fixture(params=["sqlite", "postgres"])
def make_stack(request, tmp_path, gateway):
    """Deploy with its own database of the parametrized kind; extra environment by keyword."""
    stacks = []

    def make(**env: str) -> Stack:
        sqlite = tmp_path / "db.sqlite3" if request.param == "sqlite" else None
        stack = Stack(tmp_path, processing="inline", gateway_url=gateway.url, broker=None,
                      sqlite=sqlite, settings="tests.fault_settings", env=env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


def phone(n: int) -> str:
    return f"+2557{n:08d}"


@dataclass
class Posted:
    n: int
    status: int | None  # None: no answer (refused, reset, timed out)
    seconds: float
    error: str = ""


#: A bound, not a measurement: the first requests also wait for the servers to start,
#: which takes seconds on a loaded machine. The hung-gateway test gives its own.
ANSWER_WITHIN = 30.0


def post_one(base: str, n: int, timeout: float = ANSWER_WITHIN) -> Posted:
    data = urllib.parse.urlencode({"from": phone(n), "text": f"echo {n}"}).encode()
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{base}/backend/gw/", data, timeout=timeout) as response:
            response.read()
            return Posted(n, response.status, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Posted(n, exc.code, time.monotonic() - started, str(exc))
    except (OSError, http.client.HTTPException) as exc:  # URLError, reset, timeout
        return Posted(n, None, time.monotonic() - started, repr(exc))


def post_all(bases: list[str], numbers: Iterable[int], timeout: float = ANSWER_WITHIN,
             on_answer: Callable[[Posted], None] | None = None) -> list[Posted]:
    """POST `echo n` from phone(n) for each number, eight at a time, round robin over the
    servers; every outcome, acknowledged or not."""
    def one(i_n: tuple[int, int]) -> Posted:
        i, n = i_n
        posted = post_one(bases[i % len(bases)], n, timeout)
        if on_answer:
            on_answer(posted)
        return posted

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, enumerate(numbers)))


def assert_acknowledged(results: list[Posted]) -> None:
    refused = [r for r in results if r.status != 200]
    assert not refused, f"{len(refused)} webhooks not answered 200, e.g. {refused[:3]}"


def reply_ids(stack: Stack) -> set[str]:
    return {str(pk) for (pk,) in stack.query(
        "SELECT id FROM smsrouter_message WHERE direction = 'out'")}


def attempts(stack: Stack, status: str | None = None) -> dict[str, int]:
    """Each reply's attempts so far (those of the replies in `status` if given)."""
    only = f" AND status = '{status}'" if status else ""
    return {str(pk): n for pk, n in stack.query(
        f"SELECT id, attempts FROM smsrouter_message WHERE direction = 'out'{only}")}


def settled(at_least: int) -> Callable[[dict[tuple[str, str], int]], bool]:
    """Nothing in flight, every inbound message handled and its reply sent."""
    return lambda c: (not any(c.get(key) for key in UNSETTLED)
                      and c.get(("out", "sent"), 0) == c.get(("in", "handled"), 0) >= at_least)


def figures(request, stack: Stack, gateway: FakeGateway, acknowledged: Iterable[int],
            **more: object) -> dict[str, object]:
    """lost: acknowledged messages not handled, or whose reply the gateway never accepted;
    stuck: rows left received, queued, sending or failed; duplicated: 2xx answers beyond
    the first for one reply."""
    rows = stack.query(
        "SELECT c.identity, i.status, o.id, o.status FROM smsrouter_message i "
        "JOIN smsrouter_connection c ON c.id = i.connection_id "
        "LEFT JOIN smsrouter_message o ON o.in_response_to_id = i.id AND o.direction = 'out' "
        "WHERE i.direction = 'in'")
    accepted = gateway.accepted()
    by_identity: dict[str, list[tuple]] = {}
    for identity, *rest in rows:
        by_identity.setdefault(identity, []).append(tuple(rest))
    lost = 0
    for n in acknowledged:
        found = by_identity.get(phone(n), [])
        if not any(status == "handled" and accepted[str(out_id)] for status, out_id, _ in found):
            lost += 1
    counts = stack.counts()
    result = {
        "lost": lost,
        "stuck": sum(counts.get(key, 0) for key in UNSETTLED),
        "duplicated": sum(n - 1 for n in accepted.values() if n > 1),
        "stored twice": sum(len(found) - 1 for found in by_identity.values() if len(found) > 1),
        **more,
    }
    print(f"\nFIGURES {request.node.name}: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    return result


def test_gateway_503_then_down_then_hung_then_back_gets_each_reply_once(
        request, make_stack, gateway):
    n = 20
    stack = make_stack()
    base = stack.start_web()
    gateway.default = Answer(503, "Temporal failure, try again later")
    t0 = time.time()
    assert_acknowledged(post_all([base], range(n)))
    replies = stack.wait_until(lambda: reply_ids(stack), lambda ids: len(ids) == n, 10,
                               "the replies stored")

    stack.wait_until(gateway.tried, lambda tried: set(tried) >= replies, 20,
                     "each reply tried against the failing gateway")
    gateway.down()
    # Once down() returns, the gateway has recorded every request that reached it. So an
    # attempt that is over (the row is queued again) but that the gateway never saw was
    # refused (or reset in the backlog). A row still "sending" may yet connect after up().
    stack.wait_until(lambda: (attempts(stack, status="queued"), gateway.tried()),
                     lambda a_t: all(a_t[0].get(ref, 0) > a_t[1][ref] for ref in replies), 20,
                     "each reply refused at least once")
    gateway.hang()
    gateway.up()
    stack.wait_until(lambda: {seen.form()["ref"] for seen in gateway.held()},
                     lambda held: held >= replies, 30, "each reply held by the hung gateway")
    gateway.default = Answer(202, "0: Accepted for delivery")
    gateway.release()
    stack.wait_for(settled(n), 30, "every reply sent once the gateway is back")

    accepted, tried, tries = gateway.accepted(), gateway.tried(), attempts(stack)
    refused = {ref: tries[ref] - tried[ref] for ref in replies}
    result = figures(request, stack, gateway, range(n),
                     attempts=f"{min(tries.values())}..{max(tries.values())}",
                     refused=f"{min(refused.values())}..{max(refused.values())}")
    assert set(accepted) == replies and set(accepted.values()) == {1}
    assert result["lost"] == result["stuck"] == result["duplicated"] == 0
    # 503, refused, hung, accepted: at least four attempts each, every one counted.
    wrong = {ref: (tries[ref], [(round(seen.at - t0, 2), seen.status) for seen in gateway.requests
                                if seen.form()["ref"] == ref])
             for ref in replies if tries[ref] < 4 or refused[ref] < 1}
    assert not wrong, f"attempts in the database, and the gateway's view: {wrong}"


def test_a_server_killed_mid_load_loses_nothing_it_acknowledged(request, make_stack, gateway):
    n, kill_after = 300, 100
    stack = make_stack()
    base = stack.start_web()
    gateway.default = Answer(200, delay=0.1)  # keeps sends in flight for the kill to cut
    acknowledged: set[int] = set()
    lock, enough = threading.Lock(), threading.Event()

    def count(posted: Posted) -> None:
        if posted.status == 200:
            with lock:
                acknowledged.add(posted.n)
                if len(acknowledged) >= kill_after:
                    enough.set()

    with ThreadPoolExecutor(max_workers=1) as load:
        results = load.submit(post_all, [base], range(n), 5, count)
        assert enough.wait(30), f"{kill_after} webhooks not acknowledged in 30 s"
        stack.kill("web")
        at_kill = stack.counts()
        results = results.result()
    in_flight = at_kill.get(("out", "sending"), 0)
    with lock:
        acked = set(acknowledged)
    assert len(acked) < n, "the load finished before the kill"
    assert at_kill.get(("out", "sent"), 0) < len(acked), "every reply was sent before the kill"
    assert all(r.status in (200, None) for r in results), [r for r in results if r.status not in (200, None)]

    stack.start_web()
    stack.wait_for(settled(len(acked)), 40, "every acknowledged message routed and answered")
    result = figures(request, stack, gateway, acked, acked=len(acked),
                     sending_at_kill=in_flight, queued_at_kill=at_kill.get(("out", "queued"), 0),
                     received_at_kill=at_kill.get(("in", "received"), 0))
    assert result["lost"] == result["stuck"] == result["stored twice"] == 0
    assert result["duplicated"] <= in_flight
    assert set(gateway.accepted()) == reply_ids(stack)


def test_a_scheduled_send_is_sent_by_the_running_server(request, make_stack, gateway):
    stack = make_stack()
    stack.start_web()
    numbers = [phone(9001), phone(9002)]
    due = datetime.now(UTC) + timedelta(seconds=2)
    stack.manage("smsrouter_send", "--text", "scheduled hello", "--backend", "gw",
                 "--at", due.isoformat(), *numbers)
    stored_before_due = time.time() < due.timestamp()
    if stored_before_due:
        assert stack.counts() == {("out", "queued"): 2}
    stack.wait_for(lambda c: c.get(("out", "sent"), 0) == 2, 15, "the scheduled send")

    seen = [s for s in gateway.requests if s.status == 200]
    assert sorted(s.form()["to"] for s in seen) == numbers
    assert {s.form()["text"] for s in seen} == {"scheduled hello"}
    early = due.timestamp() - min(s.at for s in seen)
    late = max(s.at for s in seen) - due.timestamp()
    result = figures(request, stack, gateway, [], stored_before_due=stored_before_due,
                     late=f"{late:.2f}s")
    assert early <= 0.05, f"sent {early:.2f} s before it was due"
    assert result["stuck"] == result["duplicated"] == 0
    assert set(gateway.accepted()) == reply_ids(stack)


def test_a_periodic_job_runs_once_per_period_under_two_servers(request, make_stack, gateway,
                                                               tmp_path):
    path = tmp_path / "ticks"
    stack = make_stack(SMSROUTER_TEST_TICKS=str(path))
    servers = [stack.start_web("web-a"), stack.start_web("web-b")]
    assert_acknowledged(post_all(servers, [1, 2]))  # both served: both lifespans started
    both_up = time.time()
    runs = stack.wait_until(lambda: ticks(path), lambda r: sum(at > both_up for at, _ in r) >= 5,
                            12, "five runs of the periodic job with both servers up")
    gaps = [later - earlier for (earlier, _), (later, _) in zip(runs, runs[1:])]
    by_server = Counter(pid for _, pid in runs)
    result = figures(request, stack, gateway, [1, 2], runs=len(runs), min_gap=f"{min(gaps):.3f}s",
                     max_gap=f"{max(gaps):.3f}s", runs_by_pid=dict(by_server))
    # A turn may be taken 0.1 period early (clock drift), and a run starts a few ms after
    # its turn: ~0.9 periods apart at the least.
    assert min(gaps) >= 0.85, f"two runs {min(gaps):.3f} s apart: {runs}"
    assert result["lost"] == 0


def test_two_servers_share_one_outbox_without_double_sends(request, make_stack, gateway):
    n = 100
    stack = make_stack()
    servers = [stack.start_web("web-a"), stack.start_web("web-b")]
    gateway.answer(503, "Temporal failure, try again later", times=n)  # retries from both sweeps
    assert_acknowledged(post_all(servers, range(n)))
    stack.wait_for(settled(n), 40, "every reply sent")
    result = figures(request, stack, gateway, range(n), requests=len(gateway.requests))
    assert result["lost"] == result["stuck"] == result["duplicated"] == result["stored twice"] == 0
    assert set(gateway.accepted()) == reply_ids(stack)


def test_webhooks_answer_while_the_gateway_hangs(request, make_stack, gateway):
    """The sender's request to the hung gateway is held for up to 60 s; every webhook must
    be answered within its client's 5 s meanwhile, so none of them waited on it."""
    n = 50
    stack = make_stack(SMSROUTER_TEST_GATEWAY_TIMEOUT="60")
    base = stack.start_web()
    # Up, and one reply sent: what follows times webhooks, not the server's start.
    assert_acknowledged(post_all([base], [n]))
    stack.wait_for(settled(1), 10, "the first reply sent")
    gateway.hang()
    results = post_all([base], range(n), timeout=5)
    assert_acknowledged(results)
    seconds = sorted(r.seconds for r in results)
    stack.wait_until(gateway.held, bool, 10, "the sender held by the hung gateway")
    assert stack.counts().get(("out", "sent"), 0) == 1  # nothing got past the hang meanwhile
    gateway.release()
    stack.wait_for(settled(n + 1), 40, "every reply sent once the gateway answers")
    result = figures(request, stack, gateway, range(n + 1), median_webhook=f"{seconds[n // 2]:.3f}s",
                     slowest_webhook=f"{seconds[-1]:.3f}s", held=len(gateway.held()))
    assert result["lost"] == result["stuck"] == result["duplicated"] == result["stored twice"] == 0


def test_without_a_channel_layer(request, make_stack, gateway):
    n = 50
    stack = make_stack(SMSROUTER_TEST_NO_CHANNEL_LAYER="1")
    shown = stack.manage("shell", "-v", "0", "-c", "from django.conf import settings; "
                         "print(hasattr(settings, 'CHANNEL_LAYERS'))")
    assert shown.stdout.split()[-1] == "False"
    base = stack.start_web()
    assert_acknowledged(post_all([base], range(n)))
    stack.wait_for(settled(n), 30, "every reply sent")
    result = figures(request, stack, gateway, range(n))
    assert stack.counts().get(("in", "handled")) == n
    assert result["lost"] == result["stuck"] == result["duplicated"] == result["stored twice"] == 0
