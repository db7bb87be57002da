"""Run every benchmark in bench/ and print one table of their figures and ratios.

    .venv/bin/python bench/run_all.py [--full] [--only redirect,e2e] [--timeout 900]

Each bench script runs as its own process (one after the other: they measure the
same 2-core machine) with short settings unless --full; its whole output is kept
under .run/bench/<name>.log and its figure lines (numbers, ratios, targets) go to
the summary table. The end-to-end figure (paid webhook -> Purchase accepted by the
fake Graph, p50/p99 at a steady load) comes from bench/e2e_bench.py.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
# Short runs for the summary; --full uses each script's own defaults.
QUICK_ARGS = {
    "redirect_bench": ["--duration", "5"],
    "bot_gateway_bench": ["--duration", "5"],
    "dispatcher_bench": ["--events", "20000"],
    "projector_bench": ["--funnels", "2000"],
    "e2e_bench": ["--payments", "100", "--rate", "10"],
}
_FIGURE = re.compile(r"\d")
_ROW_LABELS = {"gateway", "redirect", "baseline", "base", "ratio"}
_KEEP = re.compile(r"ratio|target|p99|p50|/s|events|req|records|bytes|met|missing", re.IGNORECASE)


def scripts(only: set[str] | None) -> list[Path]:
    found = sorted(p for p in HERE.glob("*_bench.py"))
    if only:
        found = [p for p in found if p.stem.removesuffix("_bench") in only or p.stem in only]
    return found


def figures(output: str) -> list[str]:
    """The lines worth a summary, in their order: section titles, table rows and lines with
    numbers that name a rate, latency or ratio."""
    out: list[str] = []
    for line in (raw.rstrip() for raw in output.splitlines()):
        first = line.split(" ", 1)[0] if line.strip() else ""
        if (line.startswith("==") or first in _ROW_LABELS or line.strip().startswith("req/s")
                or (_FIGURE.search(line) and _KEEP.search(line))):
            out.append(line)
    return out


def run_one(path: Path, full: bool, timeout: float, logs: Path) -> tuple[str, float, list[str]]:
    args = [] if full else QUICK_ARGS.get(path.stem, [])
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, check=False,
                              text=True, timeout=timeout, cwd=HERE.parent)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status = f"timeout {timeout:.0f}s"
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (
            exc.stdout or "")
    (logs / f"{path.stem}.log").write_text(output)
    found = figures(output) if status == "ok" else output.strip().splitlines()[-3:]
    return status, time.monotonic() - started, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each script's default size")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. redirect,e2e")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per script")
    args = parser.parse_args()
    # Figures are wide tables of their own: do not fold them into a narrow terminal.
    console = Console(width=max(Console().width, 150))
    logs = HERE.parent / ".run" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    table = Table(title="Grim benchmarks (figures and in-run ratios)", show_lines=True)
    table.add_column("bench")
    table.add_column("status")
    table.add_column("s", justify="right")
    table.add_column("figures")
    failed = 0
    for path in scripts(only):
        console.print(f"running {path.name} ...")
        status, seconds, found = run_one(path, args.full, args.timeout, logs)
        failed += status != "ok"
        table.add_row(path.stem.removesuffix("_bench"), status, f"{seconds:.0f}",
                      "\n".join(found) or "(no figures printed)")
    console.print(table)
    console.print(f"full outputs: {logs}/")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
