"""The row every suite benchmark reports, and the flags they all take.

bench/suite.py runs each script as a subprocess with `--json PATH -r RUNS` and merges what
they write into one table. Keeping the row's shape in one module means a script cannot
drift from what the suite reads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--json PATH` and `-r RUNS`, the interface bench/suite.py drives every script by."""
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the rows as JSON, for bench/suite.py")
    parser.add_argument("-r", "--runs", type=int, default=3,
                        help="runs per figure; the median is reported (default 3)")


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: how busy the machine was."""
    return [round(value, 2) for value in os.getloadavg()]


def row(section: str, name: str, value: float, unit: str, *, peer: float | None = None,
        ceiling: float | None = None, **extra: Any) -> dict[str, Any]:
    """One figure; `peer` is RapidSMS's in the same run, `ceiling` the limit beneath it."""
    return {"section": section, "name": name, "value": value, "unit": unit, "peer": peer,
            "ceiling": ceiling, "load": load(), **extra}


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of `runs` calls: one slow run (a cron job, a page-out) moves it little."""
    return statistics.median(measure() for _ in range(max(runs, 1)))


def run(command: list[str], *, timeout: float, **options: Any) -> str:
    """Run a measuring subprocess and return its output; on failure, show why and stop.

    The output is captured to keep the table readable, so a failing run's stderr would
    otherwise be lost.
    """
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"{' '.join(map(str, command[:3]))} ... failed ({done.returncode})")
    return done.stdout


def emit(rows: Iterable[dict[str, Any]], path: Path | None) -> list[dict[str, Any]]:
    """Print the rows for a reader and, with --json, write them for the suite."""
    rows = list(rows)
    for item in rows:
        peer = f"  RapidSMS {item['peer']:,.1f}" if item.get("peer") is not None else ""
        ceiling = f"  ceiling {item['ceiling']:,.1f}" if item.get("ceiling") is not None else ""
        value = "no figure" if item["value"] is None else f"{item['value']:,.1f}"
        print(f"{item['section']:<20} {item['name']:<52} {value:>12} "
              f"{item['unit']}{peer}{ceiling}  load {item['load']}")
    if path is not None:
        path.write_text(json.dumps(rows, indent=1))
    return rows
