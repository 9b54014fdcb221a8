"""The benchmark suite `make bench` runs: every figure in one run, one Markdown table.

Figures taken on different days or machines cannot be compared, so the suite runs each
benchmark script here and now, each as a subprocess with `--json PATH -r RUNS`, and
merges their rows. Each figure is the median of RUNS runs; RapidSMS 2.2's figure comes
from the same run; the ceiling is the most the layer beneath allows (the database's
write rate, a bare ASGI app under the same server), so the table says how close to the
limit each figure is. The machine is described above the table, and each row carries the
load average at the time it was measured.

Usage: .venv/bin/python bench/suite.py [-r 3] [--soak [--minutes 10]] [--only NAME ...]
                                       [--json PATH] [--write-readme]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = HERE / "README.md"
START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


@dataclass(frozen=True)
class Script:
    """One benchmark script of the suite, and the most time it may take."""

    name: str
    path: str
    timeout: float
    arguments: tuple[str, ...] = ()
    repeats: bool = True  # False: a single long run (the soak), so no -r


SCRIPTS = [
    Script("ceilings", "ceilings_db.py", 900),
    Script("routing", "routing_vs_rapidsms.py", 1800),
    Script("e2e", "e2e.py", 3600),
    Script("bulk", "outbound_bulk.py", 3600),
    Script("test-speed", "test_speed.py", 1800),
]


def run_script(script: Script, runs: int, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run one script; its rows, or one row saying why there are none."""
    path = HERE / script.path
    if not path.exists():
        print(f"== {script.name}: bench/{script.path} does not exist yet; its rows are skipped.")
        return [{"section": script.name, "name": f"bench/{script.path} is missing: skipped",
                 "value": None, "unit": "", "peer": None, "ceiling": None, "load": None}]
    repeat = ("-r", str(runs)) if script.repeats else ()
    options = [*repeat, *script.arguments, *extra]
    print(f"== {script.name}: bench/{script.path} {' '.join(options)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as folder:
        out = Path(folder) / "rows.json"
        command = [sys.executable, str(path), "--json", str(out), *options]
        try:
            code: int | str = subprocess.run(command, cwd=ROOT, timeout=script.timeout).returncode
        except subprocess.TimeoutExpired:
            code = f"no answer within {script.timeout:.0f} s"
        # A script may write its rows and still fail, e.g. when counts disagree: keep both.
        rows = json.loads(out.read_text()) if out.exists() else []
    if code != 0:
        print(f"== {script.name} failed ({code})", file=sys.stderr)
        rows.append({"section": script.name, "name": f"bench/{script.path} failed ({code}): "
                     "see its output above the table", "value": None, "unit": "",
                     "peer": None, "ceiling": None, "load": None})
    return rows


def soak_arguments(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """Half of the rate bench/e2e.py just measured, under the server it chose, if it did.

    Measuring the maximum again inside the soak would take its own 15 s on a different
    database; e2e's figure is the one the table shows. Without it the soak probes itself.
    """
    for row in rows:
        setup = str(row.get("setup", ""))
        if (row.get("section") == "end to end" and row.get("value")
                and str(row.get("name", "")).startswith("smsrouter inline, max sustained")
                and re.fullmatch(r"(granian|uvicorn) ×\d+, sqlite", setup)):
            kind, workers = re.match(r"(\w+) ×(\d+)", setup).groups()
            return ("--max-rate", str(row["value"]), "--server", kind, "--workers", workers)
    return ()


def fill_ceilings(rows: list[dict[str, Any]]) -> None:
    """Give each row that names its database writes (`db_writes`) its SQLite ceiling.

    The ceiling is the rate at which bare SQLite commits the row's write shape, divided by
    the messages each counted item writes (2 for an echoed SMS: it and its reply).
    """
    sqlite = {row["shape"]: row["value"] for row in rows
              if row.get("engine") == "sqlite" and row.get("value") is not None}
    for row in rows:
        writes = row.get("db_writes")
        if row.get("ceiling") is None and writes and writes["shape"] in sqlite:
            row["ceiling"] = sqlite[writes["shape"]] / writes["per_item"]
            row["ceiling_of"] = f"SQLite {writes['shape']} writes / {writes['per_item']}"


def _command(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10,
                              cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test "
                             "connect_timeout=3") as db:
            return f"PostgreSQL {db.execute('SHOW server_version').fetchone()[0]}"
    except Exception as exc:  # any failure just means "not available", and says why
        return f"PostgreSQL not reachable ({type(exc).__name__})"


def machine() -> list[str]:
    """What the figures were measured on, one fact a line."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    import django

    commit = _command("git", "rev-parse", "--short", "HEAD")
    dirty = " plus uncommitted changes" if _command("git", "status", "--porcelain",
                                                   "--untracked-files=no") else ""
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"smsrouter at {commit or 'unknown commit'}{dirty}",
        f"- CPU: {model.group(1) if model else platform.processor() or 'unknown'}, "
        f"{os.cpu_count()} cores",
        f"- RAM: {int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "- RAM: unknown",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, Django {django.get_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {_postgres_version()}",
        f"- Load average before the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:,.{digits}f} {unit}".strip()


def _is_ceiling(row: dict[str, Any]) -> bool:
    return row["section"].startswith("ceiling") or str(row["name"]).startswith("ceiling")


def _is_peer(row: dict[str, Any]) -> bool:
    """A row measuring RapidSMS alone, as e2e.py reports its server choice and maximum."""
    name = str(row["name"])
    return name.startswith("RapidSMS") or name.startswith("server choice: RapidSMS")


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: one line per row, ratios and ceilings worked out."""
    lines = ["| section | what | smsrouter | RapidSMS 2.2 | ratio | ceiling | % of ceiling | load 1m |",
             "|---|---|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        value, peer, ceiling, unit = row.get("value"), row.get("peer"), row.get("ceiling"), row["unit"]
        if _is_ceiling(row):  # a limit itself, not a figure of ours
            value, ceiling = None, value
        elif _is_peer(row):  # RapidSMS's own figure on a row of its own
            value, peer = None, value
        ratio = "–"
        if value and peer:
            ratio = f"{peer / value if row.get('lower_is_better') else value / peer:.2f}×"
        share = f"{value / ceiling * 100:.0f} %" if value and ceiling else "–"
        load = f"{row['load'][0]:.2f}" if row.get("load") else "–"
        lines.append(f"| {row['section']} | {row['name']} | {_figure(value, unit)} | "
                     f"{_figure(peer, unit)} | {ratio} | {_figure(ceiling, unit)} | {share} | "
                     f"{load} |")
    return "\n".join(lines)


def report(rows: list[dict[str, Any]], runs: int, described: list[str]) -> str:
    sources = sorted({f"- {row['section']}, {row['name']}: ceiling = {row['ceiling_of']}"
                      for row in rows if row.get("ceiling_of")})
    return "\n".join([*described, f"- Each figure: the median of {runs} runs", "",
                      table(rows), "", *sources])


def write_readme(text: str) -> None:
    """Replace the results between the markers in bench/README.md."""
    readme = README.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"bench/README.md has no {START} ... {END} markers to write between")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--soak", action="store_true", help="also the memory soak (10 minutes)")
    parser.add_argument("--minutes", type=float, default=10, help="soak length (default 10)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        choices=[s.name for s in SCRIPTS] + ["soak"],
                        help="run only this script (repeatable)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every row as JSON")
    parser.add_argument("--write-readme", action="store_true",
                        help="put the table and machine in bench/README.md's results section")
    args = parser.parse_args()
    described = machine()
    print("\n".join(described), flush=True)
    scripts = [s for s in SCRIPTS if not args.only or s.name in args.only]
    if args.soak or (args.only and "soak" in args.only):
        scripts.append(Script("soak", "soak.py", args.minutes * 60 + 900, repeats=False))
    rows: list[dict[str, Any]] = []
    for script in scripts:
        extra = (("--minutes", f"{args.minutes:g}", *soak_arguments(rows))
                 if script.name == "soak" else ())
        rows += run_script(script, args.runs, extra)
    fill_ceilings(rows)
    text = report(rows, args.runs, described)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
