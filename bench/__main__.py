"""`make bench`: the ingest, age-scan, lifecycle and latency benchmarks in one run, one results file, one table.

    .venv/bin/python -m bench [--quick] [--only ingest,scan,lifecycle,latency] [--out FILE]

Full sizes (about a quarter of an hour on two CPUs) write bench/results.json, bench/results.md (the README's
performance table) and bench/results-detail.md. `--quick` runs every benchmark end to end at a small size in well
under a minute: a smoke test of the code paths, whose figures say nothing about speed; it writes
bench/out/quick/results.json unless `--out` says otherwise, so it never replaces the published figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import ingest, latency, lifecycle, results, scan
from bench.contenders import clean_env
from bench.harness import BenchError

BENCHMARKS = ("ingest", "scan", "lifecycle", "latency")
FULL: dict[str, dict[str, Any]] = {
    "ingest": {"events": 2000, "latencies": [0.0, 20.0], "repeat": 2, "baseline_repeat": 1},
    "scan": {"secrets": 10_000, "latencies": [0.0, 20.0], "repeat": 2, "baseline_repeat": 1},
    "lifecycle": {"runs": 3, "messages": 2000, "idle_s": 3.0},
    "latency": {"latencies": [0.0, 20.0], "rate_per_s": 10.0, "steady": 300, "burst": 200, "probe_samples": 50},
}
QUICK: dict[str, dict[str, Any]] = {
    "ingest": {"events": 60, "latencies": [5.0], "repeat": 1, "baseline_repeat": 1, "timeout_s": 60.0},
    "scan": {"secrets": 150, "latencies": [5.0], "repeat": 1, "baseline_repeat": 1, "timeout_s": 60.0},
    "lifecycle": {"runs": 1, "messages": 60, "idle_s": 0.5, "timeout_s": 60.0},
    "latency": {"latencies": [5.0], "steady": 10, "burst": 20, "probe_samples": 5, "timeout_s": 60.0},
}
QUICK_OUT = results.BENCH_DIR / "out" / "quick" / "results.json"
RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ingest": ingest.run,
    "scan": scan.run,
    "lifecycle": lifecycle.run,
    "latency": latency.run,
}


Outcome = tuple[dict[str, dict[str, Any]], dict[str, BenchError]]


def _one(name: str, sizes: dict[str, dict[str, Any]], logs: Path) -> dict[str, Any]:
    sys.stdout.write(f"bench: {name}\n")  # one write: benchmarks may run in threads
    sys.stdout.flush()
    section: dict[str, Any] = RUNNERS[name](**sizes[name], out_dir=logs)
    return section


def _in_turn(names: list[str], sizes: dict[str, dict[str, Any]], logs: Path) -> Outcome:
    """One benchmark at a time, so none disturbs another's figures; stop at the first failure."""
    sections: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            sections[name] = _one(name, sizes, logs)
        except BenchError as exc:
            return sections, {name: exc}
    return sections, {}


def _concurrently(names: list[str], sizes: dict[str, dict[str, Any]], logs: Path) -> Outcome:
    """All at once, each with its own emulator (--quick: the figures are not the point, the time is)."""
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(_one, name, sizes, logs) for name in names}
    sections: dict[str, dict[str, Any]] = {}
    failures: dict[str, BenchError] = {}
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            sections[name] = future.result()
        elif isinstance(error, BenchError):
            failures[name] = error
        else:
            raise error
    return sections, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated, from " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, help=f"results file (default {results.RESULTS}; --quick: {QUICK_OUT})")
    parser.add_argument("--logs", type=Path, help="every process's output (default: bench/out, or bench/out/quick)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown or not chosen:
        print(f"bench: unknown or no benchmarks: {', '.join(unknown) or '-'}", file=sys.stderr)
        return 2
    out = args.out or (QUICK_OUT if args.quick else results.RESULTS)
    logs = args.logs or (QUICK_OUT.parent if args.quick else results.BENCH_DIR / "out")
    os.environ.clear()
    os.environ.update(clean_env())  # the harness's own clients too: fake credentials, nothing reaches AWS
    started = time.monotonic()
    names = [name for name in BENCHMARKS if name in chosen]
    sections, failures = (_concurrently if args.quick else _in_turn)(names, QUICK if args.quick else FULL, logs)
    for name in sections:
        sections[name]["parameters"]["quick"] = args.quick
    if failures:
        for name, error in failures.items():
            print(f"bench: {name}: {error}", file=sys.stderr)
        if sections:
            print(f"bench: kept {', '.join(sections)} in {results.update(sections, out)}", file=sys.stderr)
        return 1
    path = results.update(sections, out)
    print()
    print(path.with_suffix(".md").read_text())
    took_s = time.monotonic() - started
    print(f"bench: wrote {path}, {path.with_suffix('.md')} and {path.stem}-detail.md in {took_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
