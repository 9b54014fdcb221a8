"""End to end: Kannel-style inbound SMS over HTTP, every echo reply handed to a gateway.

What a deployment does, on one machine in one run: a gateway requests
`GET /backend/kannel/?id=+2557...&text=echo+<n>` (each message from a number of its own),
the server stores and routes the message, and the reply leaves through the Kannel backend
to bench/fake_kannel.py, which counts it. The same workload goes to RapidSMS 2.2 under
gunicorn (bench/rapidsms_project/, from its own virtualenv). Two ceilings run under the
same server: the ceiling app (bench/ceiling_app.py: the same writes with the same commits,
in raw sqlite3 and aiohttp, no framework), which the inline and Celery rows are measured
against, and a raw ASGI hello-world, which stores nothing: no application could pass it.

Measured, each figure the median of -r runs on a fresh database:

* server choice: the demo in inline mode under uvicorn (httptools, uvloop) and granian,
  with 1 and 2 workers, on SQLite and PostgreSQL, a few seconds each; the rest of the run
  uses the fastest that delivered every reply. Likewise 2 or 4 gunicorn sync workers for
  RapidSMS. Both sides get their best setup on these 2 cores.
* inline, max sustained: 64 connections, each sending its next message as soon as the last
  is answered (closed loop). An answer in inline mode means the message, its outcome and
  its reply are committed; the server's own sender sends the reply just after, so the
  figure runs until the last reply reached the gateway, as Celery mode's does.
* inline at a fixed 1,000 msg/s: sent on schedule whatever the answers do (open loop),
  latency counted from when each message was due, so queueing cannot hide; and likewise
  at 70 % of the max sustained rate that the server choice measured for that setup, as a
  machine too slow to sustain 1,000 msg/s shows only its queue at that rate. Both on one
  uvicorn process on SQLite (LATENCY_SERVER says why), the ceiling app beside each.
* Celery mode: the answer means "stored"; a Celery worker (Redis broker, a queue of the
  run's own) routes and sends. Accepted msg/s is the HTTP side; end to end msg/s runs
  until the last reply reached the gateway. The database (SQLite or PostgreSQL) is chosen
  in the run, briefly, as for inline mode. The pool is fixed, not chosen in the run: with
  up to 100 ids per task, the pool hardly matters. `--quick -r 1` went end to end at
  1,393 msg/s with threads -c 4 (SQLite) and 1,424 with prefork -c 2 (PostgreSQL); the
  worker alone, draining 4,000 queued messages on SQLite, at 587 msg/s with threads -c 4,
  571 with threads -c 8, 721 with prefork -c 2 and 679 with solo, worker start included.
* RapidSMS 2.2: the max sustained workload, same generator, same counts.
* ceiling app: bench/ceiling_app.py under the chosen server (on SQLite whatever the
  database chosen), the max sustained workload, counted until the last reply, same counts
  as smsrouter's (it writes the demo's tables). The inline and Celery end to end rows show
  their share of it. Its p99 at the fixed rate shows the floor beneath smsrouter's.
* raw ASGI: the hello-world under the chosen server, same generator; and through wrk, to
  show the Python generator is not what limits the figures.

Accepted is the number of 2xx answers; delivered the recipients the fake gateway counted;
the database's inbound rows and sent replies are checked against both. Any difference, or
any error, is printed and makes the exit status 1. The load generator stops sending at the
end and waits for the answers in flight (bench/harness.py says why). Load averages are
taken before each measurement; other work on the machine moves the figures.

Usage: .venv/bin/python bench/e2e.py [-r 3] [--quick] [--json PATH]
Needs wrk, PostgreSQL and Redis on loopback, as `make bench` sets up; about 6 minutes with
-r 3, 2 with --quick -r 1.
"""

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import ROOT, Databases, FakeKannel, LoadResult, Processes

SECTION = "end to end"
BIN = Path(sys.executable).parent
PEER_VENV = ROOT / "bench" / ".rapidsms-venv"
PEER_PACKAGES = ("rapidsms==2.2.0", "gunicorn>=23")
CELERY_BROKER = f"{harness.REDIS}/12"
#: Numbers for warm-up messages, apart from the measured ones (which start at 0).
WARMUP_NUMBERS = 90_000_000
WARMUP_MESSAGES = 300


@dataclass(frozen=True)
class Server:
    """How the demo is served: which ASGI server, how many worker processes, which database."""

    kind: str
    workers: int
    database: str

    @property
    def label(self) -> str:
        return f"{self.kind} ×{self.workers}"

    def command(self, target: str, port: int) -> list[str]:
        if self.kind == "uvicorn":
            return [str(BIN / "uvicorn"), target, "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(self.workers), "--loop", "uvloop", "--http", "httptools",
                    "--lifespan", "on", "--no-access-log", "--log-level", "warning",
                    "--backlog", "2048"]
        if self.kind == "granian":
            return [str(BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", str(self.workers), "--loop", "uvloop",
                    "--no-access-log", "--log-level", "warning", "--backlog", "2048", target]
        raise ValueError(f"unknown server {self.kind!r}")


CANDIDATES = (
    Server("uvicorn", 1, "sqlite"),
    Server("uvicorn", 2, "sqlite"),
    Server("uvicorn", 2, "postgres"),
    Server("granian", 1, "sqlite"),
    Server("granian", 2, "postgres"),
)
PEER_WORKERS = (2, 4)
#: Where the fixed-rate rows are measured: one server process on SQLite, the single-machine
#: deployment the README describes. The fastest setup is rarely it: two processes on one
#: SQLite file wait for each other's write lock in SQLite's busy handler, whose sleeps grow
#: to 100 ms, so their p99 measures that wait (at a fixed 700 msg/s on 2 cores: 230 to
#: 500 ms on uvicorn ×2, 38 to 94 ms on uvicorn ×1, bench/README.md).
LATENCY_SERVER = Server("uvicorn", 1, "sqlite")
#: The share of its own max sustained rate at which a server's latency is also measured:
#: a fixed 1,000 msg/s may be beyond what a slower machine sustains at all, and then its
#: p99 measures the queue, not the router.
SHARE = 0.7


@dataclass
class Run:
    """One measurement: what the generator saw, what the gateway and the database hold."""

    rate: float
    p50_ms: float
    p99_ms: float
    accepted: int
    failed: int
    errors: int
    delivered: int
    stored: int
    replied: int
    seconds: float
    load: list[float]
    end_to_end_s: float | None = None

    @property
    def consistent(self) -> bool:
        """Every message answered 2xx, stored, replied to, and its reply delivered once."""
        return (self.failed == self.errors == 0
                and self.accepted == self.delivered == self.stored == self.replied)

    def problems(self) -> str:
        return (f"accepted {self.accepted}, delivered {self.delivered}, stored {self.stored}, "
                f"replied {self.replied}, non-2xx {self.failed}, errors {self.errors}")


@dataclass
class Figure:
    """A measurement repeated: the run with the median value stands for it."""

    name: str
    unit: str
    runs: list[Run]
    value_of: Callable[[Run], float] = field(repr=False)
    setup: str = ""
    peer: "Figure | None" = None
    ceiling: "Figure | None" = None
    server: Server | None = None
    #: What `ceiling` is, for the lines under bench/suite.py's table.
    ceiling_of: str = ""

    @property
    def median_run(self) -> Run:
        ordered = sorted(self.runs, key=self.value_of)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def value(self) -> float:
        return statistics.median(self.value_of(run) for run in self.runs)

    @property
    def consistent(self) -> bool:
        return all(run.consistent for run in self.runs)

    def row(self) -> dict[str, Any]:
        run = self.median_run
        return {"section": SECTION, "name": self.name, "value": round(self.value, 2),
                "unit": self.unit, "p50_ms": _round(run.p50_ms), "p99_ms": _round(run.p99_ms),
                "accepted": run.accepted, "delivered": run.delivered,
                "peer": round(self.peer.value, 2) if self.peer else None,
                "ceiling": round(self.ceiling.value, 2) if self.ceiling else None,
                **({"ceiling_of": self.ceiling_of} if self.ceiling and self.ceiling_of else {}),
                "load": run.load, "setup": self.setup, "consistent": self.consistent,
                "runs": [asdict(each) for each in self.runs]}


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def rate(run: Run) -> float:
    return run.rate


def p99(run: Run) -> float:
    return run.p99_ms


def end_to_end_rate(run: Run) -> float:
    return run.delivered / run.end_to_end_s if run.end_to_end_s else 0.0


class Bench:
    """One benchmark run: the fake gateway, the databases, the options, the process logs."""

    def __init__(self, processes: Processes, folder: Path, args: argparse.Namespace) -> None:
        self.folder, self.args, self.processes = folder, args, processes
        self.gateway = FakeKannel(processes)
        self.databases: dict[str, Databases] = {}
        self.peer_databases: Databases | None = None
        self.measured = itertools.count(1)

    def close(self) -> None:
        for databases in self.databases.values():
            databases.close()

    def database(self, kind: str) -> str:
        if kind not in self.databases:
            self.databases[kind] = Databases(kind, self.folder, self.migrate, label="bench_e2e")
        return self.databases[kind].new()

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings_e2e",
                "DATABASE_URL": database_url, "FAKE_KANNEL_URL": self.gateway.sendsms_url,
                "DJANGO_DEBUG": "0", "PYTHONUNBUFFERED": "1", **extra}

    def migrate(self, database_url: str) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=self.env(database_url), check=True, timeout=300)

    def closed(self, connections: int, seconds: float,
               limit: int | None = None) -> Callable[[str], LoadResult]:
        return lambda base: harness.closed_loop(base, harness.kannel_path,
                                                connections=connections, seconds=seconds,
                                                limit=limit)

    def smsrouter(self, server: Server, load: Callable[[str], LoadResult], *,
                  celery: str | None = None) -> Run:
        """Serve the demo, inline or (with a pool, e.g. "prefork:2") with a Celery worker."""
        database_url = self.database(server.database)
        queue = f"bench-e2e-{uuid.uuid4().hex[:8]}"
        env = self.env(database_url, SMSROUTER_PROCESSING="celery" if celery else "inline",
                       CELERY_BROKER_URL=CELERY_BROKER, CELERY_QUEUE=queue)
        try:
            with Processes(self.folder) as processes:
                port = harness.free_port()
                name = f"smsrouter-{next(self.measured)}"
                processes.start(name, server.command("demo.asgi:application", port), env=env)
                if celery:
                    pool, concurrency = celery.split(":")
                    processes.start(f"{name}-worker", [
                        str(BIN / "celery"), "-A", "demo", "worker", "-P", pool,
                        "-c", concurrency, "-Q", queue, "-l", "warning", "--without-gossip",
                        "--without-mingle", "--without-heartbeat", "-n", f"{queue}@%h"],
                        env=env)
                base = f"http://127.0.0.1:{port}"
                processes.wait_until_answers(f"{base}/backend/kannel/")
                return self._measure(base, load, processes,
                                     lambda: _smsrouter_counts(database_url))
        finally:
            if celery:  # once its processes are gone, so that nothing publishes after
                _drop_queue(queue)

    def rapidsms(self, workers: int, load: Callable[[str], LoadResult]) -> Run:
        """Serve bench/rapidsms_project under gunicorn's sync workers."""
        if self.peer_databases is None:
            self.peer_databases = Databases("sqlite", self.folder, self.migrate_peer,
                                            label="bench_e2e_rapidsms")
        database_url = self.peer_databases.new()
        with Processes(self.folder) as processes:
            port = harness.free_port()
            processes.start(f"rapidsms-{next(self.measured)}", [
                str(PEER_VENV / "bin" / "gunicorn"), "rapidsms_project.wsgi:application",
                "--workers", str(workers), "--worker-class", "sync",
                "--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning"],
                env=self.peer_env(database_url), cwd=ROOT / "bench")
            base = f"http://127.0.0.1:{port}"
            processes.wait_until_answers(f"{base}/backend/kannel/")
            return self._measure(base, load, processes, lambda: _rapidsms_counts(database_url))

    def peer_env(self, database_url: str) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "rapidsms_project.settings",
                "RAPIDSMS_DATABASE": database_url.removeprefix("sqlite:///"),
                "FAKE_KANNEL_URL": self.gateway.sendsms_url, "PYTHONUNBUFFERED": "1"}

    def migrate_peer(self, database_url: str) -> None:
        subprocess.run([str(peer_python()), "-m", "django", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT / "bench", env=self.peer_env(database_url), check=True,
                       timeout=300)

    def ceiling_app(self, server: Server, load: Callable[[str], LoadResult]) -> Run:
        """Serve bench/ceiling_app.py on a fresh copy of the demo's SQLite database."""
        database_url = self.database("sqlite")
        with Processes(self.folder) as processes:
            port = harness.free_port()
            processes.start(f"ceiling-app-{next(self.measured)}",
                            server.command("bench.ceiling_app:app", port),
                            env={**os.environ, "DATABASE_URL": database_url,
                                 "FAKE_KANNEL_URL": self.gateway.sendsms_url,
                                 "PYTHONUNBUFFERED": "1"})
            base = f"http://127.0.0.1:{port}"
            processes.wait_until_answers(f"{base}/backend/kannel/")
            return self._measure(base, load, processes,
                                 lambda: _smsrouter_counts(database_url))

    def ceiling(self, server: Server) -> tuple[Run, float]:
        """The hello-world under `server`: the same generator's figure, then wrk's req/s."""
        with Processes(self.folder) as processes:
            port = harness.free_port()
            processes.start(f"hello-{next(self.measured)}",
                            server.command("bench.harness:hello", port), env=dict(os.environ))
            base = f"http://127.0.0.1:{port}"
            processes.wait_until_answers(base + "/")
            connections, seconds = self.args.connections, self.args.seconds
            harness.closed_loop(base, lambda n: "/", connections=connections, seconds=1)
            load_before = harness.load_average()
            result = harness.closed_loop(base, lambda n: "/", connections=connections,
                                         seconds=seconds)
            wrk = harness.run_wrk(base + "/", connections=connections, seconds=seconds)
            processes.check()
        return _run(result, result.ok, result.ok, result.ok, load_before), wrk.rate

    def _measure(self, base: str, load: Callable[[str], LoadResult], processes: Processes,
                 counts: Callable[[], tuple[int, int]]) -> Run:
        """Warm up, zero the counts, run the load, then wait (bounded) for every reply.

        The warm-up (imports, connection pools, every worker process) must be fully
        delivered first, or its late replies would be counted as the measurement's.
        """
        self.gateway.reset()
        warm = harness.closed_loop(base, lambda n: harness.kannel_path(WARMUP_NUMBERS + n),
                                   connections=self.args.connections, seconds=10,
                                   limit=WARMUP_MESSAGES)
        warm_delivered, _ = self.gateway.wait_for(warm.ok, timeout=120, settle=0.5)
        if warm.ok != WARMUP_MESSAGES or warm_delivered != warm.ok:
            raise RuntimeError(f"warm-up: {WARMUP_MESSAGES} sent, {warm.ok} accepted, "
                               f"{warm_delivered} delivered; the server is not healthy")
        stored_before, replied_before = counts()
        self.gateway.reset()
        load_before = harness.load_average()
        result = load(base)
        delivered, drain = self.gateway.wait_for(result.ok, timeout=self.args.drain_timeout)
        processes.check()
        self.processes.check()
        stored, replied = counts()
        return _run(result, delivered, stored - stored_before, replied - replied_before,
                    load_before, end_to_end_s=result.seconds + drain)


def _run(result: LoadResult, delivered: int, stored: int, replied: int, load: list[float],
         end_to_end_s: float | None = None) -> Run:
    return Run(rate=result.rate, p50_ms=result.percentile_ms(50),
               p99_ms=result.percentile_ms(99), accepted=result.ok, failed=result.failed,
               errors=result.errors, delivered=delivered, stored=stored, replied=replied,
               seconds=result.seconds, load=load, end_to_end_s=end_to_end_s)


def _smsrouter_counts(database_url: str) -> tuple[int, int]:
    counts = harness.message_counts(database_url)
    stored = sum(count for (direction, _), count in counts.items() if direction == "in")
    return stored, counts.get(("out", "sent"), 0)


def _rapidsms_counts(database_url: str) -> tuple[int, int]:
    rows = dict(harness.query(database_url, "SELECT direction, count(*) "
                                            "FROM messagelog_message GROUP BY direction"))
    return rows.get("I", 0), rows.get("O", 0)


def _drop_queue(queue: str) -> None:
    """Delete the run's queue and bindings from Redis, leaving other runs' keys alone."""
    import redis

    with redis.Redis.from_url(CELERY_BROKER) as broker:
        for key in broker.scan_iter(match=f"*{queue}*"):
            broker.delete(key)


def peer_python() -> Path:
    """RapidSMS's virtualenv, made on first use with rapidsms 2.2.0 and gunicorn."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    if not (PEER_VENV / "bin" / "gunicorn").exists():
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True,
                       timeout=600)
    return python


def repeat(runs: int, measure: Callable[[], Run]) -> list[Run]:
    return [measure() for _ in range(runs)]


def choose_server(bench: Bench, seconds: float) -> tuple[Server, list[Figure]]:
    """Each candidate briefly, inline; the fastest that delivered every reply wins."""
    figures: list[Figure] = []
    for server in CANDIDATES:
        _try(figures, f"{server.label}, {server.database}",
             lambda: bench.smsrouter(server, bench.closed(bench.args.connections, seconds)),
             lambda run: Figure(f"server choice: smsrouter inline, {server.label}, "
                                f"{server.database}", "msg/s", [run], end_to_end_rate,
                                setup=f"{server.label}, {server.database}", server=server))
    return _best(figures, "no server setup"), figures


def choose_celery_database(bench: Bench, server: Server) -> tuple[Server, list[Figure]]:
    """Celery mode on each database, briefly; the best end to end rate wins.

    A web process and a worker both write, which SQLite serialises: measured, not assumed.
    """
    figures: list[Figure] = []
    for database in ("sqlite", "postgres"):
        candidate = Server(server.kind, server.workers, database)
        _try(figures, f"Celery mode, {database}",
             lambda: bench.smsrouter(candidate, bench.closed(bench.args.connections, 120,
                                                             limit=bench.args.choice_count),
                                     celery=bench.args.celery_pool),
             lambda run: Figure(f"server choice: smsrouter Celery mode, end to end, {database}",
                                "msg/s", [run], end_to_end_rate,
                                setup=f"{server.label}, {database}", server=candidate))
    return _best(figures, "Celery mode on no database"), figures


def _try(figures: list[Figure], label: str, measure: Callable[[], Run],
         figure: Callable[[Run], Figure]) -> None:
    """Measure one candidate; one that fails (say, "database is locked" failing the
    warm-up) is left out, with why."""
    try:
        run = measure()
    except RuntimeError as exc:
        print(f"  {label}: failed, left out: {exc}", flush=True)
        return
    figures.append(figure(run))
    print(f"  {figures[-1].name}: {figures[-1].value:,.0f} msg/s"
          f"{'' if run.consistent else '  INCONSISTENT: ' + run.problems()}", flush=True)


def _best(figures: list[Figure], which: str) -> Server:
    usable = [figure for figure in figures if figure.consistent]
    if not usable:
        raise SystemExit(f"{which} delivered every reply; see the figures above")
    return max(usable, key=lambda figure: figure.value).server


def choose_peer_workers(bench: Bench, seconds: float) -> tuple[int, list[Figure]]:
    figures = []
    for workers in PEER_WORKERS:
        run = bench.rapidsms(workers, bench.closed(bench.args.connections, seconds))
        figures.append(Figure(f"server choice: RapidSMS 2.2, gunicorn ×{workers} sync",
                              "msg/s", [run], rate, setup=f"gunicorn ×{workers} sync, sqlite"))
        print(f"  {figures[-1].name}: {run.rate:,.0f} msg/s", flush=True)
    best = max(zip(figures, PEER_WORKERS), key=lambda pair: pair[0].value)
    return best[1], figures


def measure(bench: Bench) -> list[Figure]:
    args = bench.args
    print("choosing the server", flush=True)
    server, choices = choose_server(bench, args.choice_seconds)
    workers, peer_choices = choose_peer_workers(bench, args.choice_seconds)
    setup = f"{server.label}, {server.database}"
    sustained = bench.closed(args.connections, args.seconds)

    def fixed_load(rate: float) -> Callable[[str], LoadResult]:
        return lambda base: harness.open_loop(base, harness.kannel_path, rate=rate,
                                              count=int(rate * args.rate_seconds))

    print(f"measuring with {setup}; RapidSMS on gunicorn ×{workers}", flush=True)
    ceiling = Figure(f"ceiling: raw ASGI hello-world, {server.label}", "req/s", [], rate,
                     setup=setup)
    wrk_rates = []
    for _ in range(args.runs):
        run, wrk_rate = bench.ceiling(server)
        ceiling.runs.append(run)
        wrk_rates.append(wrk_rate)
    wrk_ceiling = Figure(f"ceiling: raw ASGI hello-world, {server.label}, through wrk",
                         "req/s", [_wrk_run(value) for value in wrk_rates], rate, setup=setup)
    app_setup = f"{server.label}, sqlite"
    app_ceiling = Figure(f"ceiling app: raw sqlite3 + aiohttp, {app_setup}, until the last reply",
                         "msg/s", repeat(args.runs, lambda: bench.ceiling_app(server, sustained)),
                         end_to_end_rate, setup=app_setup)
    app_of = f"the ceiling app (bench/ceiling_app.py) under {app_setup}"

    peer = Figure(f"RapidSMS 2.2 under gunicorn ×{workers} sync, max sustained", "msg/s",
                  repeat(args.runs, lambda: bench.rapidsms(workers, sustained)), rate,
                  setup=f"gunicorn ×{workers} sync, sqlite")
    inline = Figure(f"smsrouter inline, max sustained ({args.connections} connections), "
                    "until the last reply", "msg/s",
                    repeat(args.runs, lambda: bench.smsrouter(server, sustained)),
                    end_to_end_rate, setup=setup, peer=peer, ceiling=app_ceiling,
                    ceiling_of=app_of)
    fixed = latency_figures(bench, f"a fixed {args.rate:,.0f} msg/s", fixed_load(args.rate))
    latency_max = next((figure for figure in choices
                        if figure.server == LATENCY_SERVER and figure.consistent), None)
    if latency_max is None:
        print(f"no share of {LATENCY_SERVER.label}'s max rate: its server choice failed", flush=True)
        shared = []
    else:
        share_rate = round(SHARE * latency_max.value)
        shared = latency_figures(bench, f"{SHARE:.0%} of smsrouter's max sustained rate on it, "
                                 f"{share_rate:,} msg/s", fixed_load(share_rate))
    celery_server, celery_choices = choose_celery_database(bench, server)
    celery_runs = repeat(args.runs, lambda: bench.smsrouter(
        celery_server, bench.closed(args.connections, 120, limit=args.celery_count),
        celery=args.celery_pool))
    celery_setup = (f"{celery_server.label}, {celery_server.database}, Celery worker -P "
                    f"{args.celery_pool.replace(':', ' -c ')}, Redis broker")
    celery_accepted = Figure(f"smsrouter Celery mode, accepted ({args.celery_count} messages)",
                             "msg/s", celery_runs, rate, setup=celery_setup)
    celery_e2e = Figure("smsrouter Celery mode, end to end (until the last reply)", "msg/s",
                        celery_runs, end_to_end_rate, setup=celery_setup, peer=peer,
                        ceiling=app_ceiling, ceiling_of=app_of)
    return [inline, fixed[0], *shared[:1], celery_accepted, celery_e2e, peer, app_ceiling,
            fixed[1], *shared[1:], ceiling, wrk_ceiling,
            *choices, *celery_choices, *peer_choices]


def latency_figures(bench: Bench, at: str, load: Callable[[str], LoadResult]) -> list[Figure]:
    """smsrouter's p99 under `load` on LATENCY_SERVER, and the ceiling app's under the same."""
    setup = f"{LATENCY_SERVER.label}, {LATENCY_SERVER.database}"
    ours = Figure(f"smsrouter inline at {at}, p99", "ms",
                  repeat(bench.args.runs, lambda: bench.smsrouter(LATENCY_SERVER, load)), p99,
                  setup=setup)
    floor = Figure(f"ceiling app at {at}, p99", "ms",
                   repeat(bench.args.runs, lambda: bench.ceiling_app(LATENCY_SERVER, load)), p99,
                   setup=setup)
    return [ours, floor]


def _wrk_run(value: float) -> Run:
    """wrk reports no counts worth checking for the hello-world: its req/s alone."""
    return Run(rate=value, p50_ms=math.nan, p99_ms=math.nan, accepted=0, failed=0, errors=0,
               delivered=0, stored=0, replied=0, seconds=0.0, load=harness.load_average())


def print_table(figures: list[Figure]) -> None:
    print("\n| measurement | setup | value | p50 ms | p99 ms | accepted | delivered | "
          "vs RapidSMS | of ceiling | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for figure in figures:
        run = figure.median_run
        peer = f"{figure.value / figure.peer.value:.1f}×" if figure.peer else ""
        ceiling = f"{figure.value / figure.ceiling.value:.0%}" if figure.ceiling else ""
        counted = run.accepted or run.delivered
        flag = "" if figure.consistent else " ⚠"
        print(f"| {figure.name}{flag} | {figure.setup} | {figure.value:,.1f} {figure.unit} | "
              f"{_cell(run.p50_ms)} | {_cell(run.p99_ms)} | "
              f"{counted and f'{run.accepted:,}' or ''} | {counted and f'{run.delivered:,}' or ''}"
              f" | {peer} | {ceiling} | {run.load[0]:.2f} |")
    for figure in figures:
        for number, run in enumerate(figure.runs, 1):
            if not run.consistent:
                print(f"⚠ {figure.name}, run {number}: {run.problems()}")


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--runs", type=int, default=3,
                        help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the rows as JSON, for bench/suite.py")
    parser.add_argument("--quick", action="store_true",
                        help="shorter measurements, for trying the benchmark out")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="the fixed rate, msg/s (default 1000)")
    parser.add_argument("--celery-pool", default="threads:4", metavar="POOL:N",
                        help="the Celery worker's pool and concurrency (default threads:4)")
    args = parser.parse_args()
    args.seconds, args.rate_seconds, args.choice_seconds = (4, 4, 2) if args.quick else (10, 10, 4)
    args.celery_count, args.choice_count = (1000, 300) if args.quick else (2000, 600)
    args.drain_timeout = 120.0
    harness.exit_on_sigterm()
    if args.runs < 1:
        parser.error("-r must be at least 1")

    peer_python()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{harness.load_average()}; -r {args.runs}{', quick' if args.quick else ''}", flush=True)
    with harness.workspace("bench-e2e-") as folder, Processes(folder) as processes:
        bench = Bench(processes, folder, args)
        try:
            figures = measure(bench)
        finally:
            bench.close()
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps([figure.row() for figure in figures], indent=1))
    return 0 if all(figure.consistent for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
