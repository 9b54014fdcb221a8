"""Soak: is the server's memory flat over 10 minutes at half its maximum rate?

A router runs for months; memory that grows a little per message ends in the OOM
killer, and a short benchmark never shows it. This serves the demo as bench/e2e.py does
(its server command lines, by default the granian ×1 it chose on the 2-core bench
machine; bench/settings_e2e.py, inline processing, a fresh SQLite file, replies to
bench/fake_kannel.py), measures its maximum inline rate briefly (or takes --max-rate),
then sends Kannel inbound messages at half that rate, open loop, for --minutes. Every
10 s it samples the resident memory (RSS) of the server's whole process group.

It reports the mean RSS of the first minute against that of the last, and the maximum:
"flat" when the last minute is within 10 % of the first. It also checks that every
message the server accepted got its echo reply at the fake gateway.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--max-rate MSG_PER_S]
                                      [--server granian|uvicorn] [--workers 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rows
from e2e import Server
from harness import (Databases, FakeKannel, Processes, closed_loop, exit_on_sigterm, free_port,
                     kannel_path, message_counts, open_loop, workspace)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE_EVERY = 10.0
FLAT = 0.10
PROBE_SECONDS = 15.0


def environment(database_url: str, sendsms_url: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "settings_e2e", "DATABASE_URL": database_url,
            "FAKE_KANNEL_URL": sendsms_url, "SMSROUTER_PROCESSING": "inline", "DJANGO_DEBUG": "0",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}


def group_rss(group: int) -> int:
    """Resident bytes of every process in process group `group` (the server and workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != group:  # fields after "(comm)": state, ppid, pgrp, ...
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError):
            continue  # gone meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class Sampler(threading.Thread):
    """Samples a process group's RSS every SAMPLE_EVERY seconds until stopped."""

    def __init__(self, group: int) -> None:
        super().__init__(daemon=True)
        self.group = group
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopped.is_set():
            self.samples.append((time.monotonic() - started, group_rss(self.group)))
            self.stopped.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=SAMPLE_EVERY * 2)


def soak(minutes: float, max_rate: float | None, server_kind: str,
         workers: int) -> list[dict[str, Any]]:
    """Serve, probe, soak; the rows to report."""
    with workspace("bench-soak-") as folder, Processes(folder) as processes:
        gateway = FakeKannel(processes)

        def migrate(url: str) -> None:
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                           cwd=ROOT, env=environment(url, gateway.sendsms_url), check=True,
                           timeout=300)

        with Databases("sqlite", folder, migrate, label="soak") as databases:
            database = databases.new()
            port = free_port()
            command = Server(server_kind, workers, "sqlite").command("demo.asgi:application", port)
            server = processes.start(server_kind, command,
                                     env=environment(database, gateway.sendsms_url))
            base = f"http://127.0.0.1:{port}"
            processes.wait_until_answers(f"{base}/backend/kannel/")
            if max_rate is None:
                probe = closed_loop(base, kannel_path, connections=32, seconds=PROBE_SECONDS)
                max_rate = probe.rate
                print(f"probe: {probe.ok} messages in {probe.seconds:.1f} s, "
                      f"{max_rate:,.0f} msg/s at most", flush=True)
                gateway.wait_for(probe.ok, timeout=120)
            gateway.reset()
            rate = max_rate / 2
            count = int(rate * minutes * 60)
            offset = 10_000_000  # numbers the probe never used
            print(f"soak: {count:,} messages at {rate:,.0f} msg/s for {minutes:g} min, "
                  f"{server_kind} ×{workers}", flush=True)
            sampler = Sampler(server.pid)
            sampler.start()
            try:
                result = open_loop(base, lambda n: kannel_path(offset + n), rate=rate, count=count)
            finally:
                sampler.stop()
            processes.check()
            delivered, _ = gateway.wait_for(result.ok, timeout=120)
            counts = message_counts(database)
    return report(sampler.samples, minutes, rate, result, delivered, counts,
                  f"{server_kind} ×{workers}")


def report(samples: list[tuple[float, int]], minutes: float, rate: float, result: Any,
           delivered: int, counts: dict[tuple[str, str], int],
           setup: str) -> list[dict[str, Any]]:
    end = samples[-1][0]
    first = statistics.mean(rss for at, rss in samples if at <= 60) / 2**20
    last = statistics.mean(rss for at, rss in samples if at >= end - 60) / 2**20
    peak = max(rss for _, rss in samples) / 2**20
    growth = (last - first) / first * 100
    flat = abs(growth) <= FLAT * 100
    print(f"RSS MiB: first minute {first:.1f}, last minute {last:.1f}, max {peak:.1f}: "
          f"{growth:+.1f} % ({'flat' if flat else 'NOT flat'}); samples {len(samples)}")
    unanswered = result.sent - result.ok - result.failed - result.errors
    print(f"sent {result.sent}, accepted {result.ok}, failed {result.failed}, errors "
          f"{result.errors}, lost inside the load generator {unanswered}, delivered {delivered}; "
          f"messages by (direction, status): {counts}")
    common = {"setup": setup, "sent": result.sent, "accepted": result.ok, "delivered": delivered,
              "unanswered": unanswered, "rate": rate, "minutes": minutes,
              "p50_ms": result.percentile_ms(50), "p99_ms": result.percentile_ms(99)}
    return [
        rows.row("soak", f"{setup} RSS, last minute vs first, {minutes:g} min at {rate:,.0f} msg/s "
                 f"({first:.0f} → {last:.0f} MiB, max {peak:.0f}; "
                 f"{'flat' if flat else 'NOT flat'})", growth, "%",
                 rss_first_mib=first, rss_last_mib=last, rss_max_mib=peak, flat=flat,
                 samples=len(samples), lower_is_better=True, **common),
        rows.row("soak", f"replies at the gateway / messages accepted "
                 f"(p99 {result.percentile_ms(99):,.0f} ms)", delivered / max(result.ok, 1) * 100,
                 "%", failed=result.failed, errors=result.errors, **common),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="soak length (default 10)")
    parser.add_argument("--max-rate", type=float,
                        help="the server's maximum msg/s; default: measured for 15 s first")
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian",
                        help="the ASGI server, as bench/e2e.py runs it (default granian)")
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the rows as JSON, for bench/suite.py")
    args = parser.parse_args()
    exit_on_sigterm()
    rows.emit(soak(args.minutes, args.max_rate, args.server, args.workers), args.json)


if __name__ == "__main__":
    main()
