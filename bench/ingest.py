"""`make bench`: drain the same prefilled queue with rotaudit, a seed-style baseline and a raw ceiling.

For each latency (default 0 and 20 ms injected per AWS call) one emulator process (`python -m daemon.devtools.emulator`,
the patched moto that `make run` and the tests use) serves every contender in turn; each contender gets fresh
resources and the same 2,000 messages (a third exact duplicates). Prints a table and the ratios with PASS/MISS
against the issue's targets; replaces the `ingest` section of bench/results.json and rewrites bench/results.md
(`python -m bench` runs this with the other benchmarks). Logs of every process go to bench/out/.

    .venv/bin/python -m bench.ingest [--events 2000] [--latency-ms 0,20] [--only rotaudit,ceiling,baseline]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, results
from bench.contenders import CONTENDERS, INFO_LOGGING, clean_env
from bench.harness import BenchError, EmulatorProcess, measure
from bench.workload import SEED, build_workload

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
# The project's emulator, patched (daemon/devtools/patches/) for the two moto artifacts that would otherwise swamp
# what is measured: TransactWriteItems copying the whole table per call, and concurrent deletes lost.
EMULATORS = {"project": "daemon.devtools.emulator"}


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="messages to prefill (a third duplicates)")
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated injected latencies per AWS call")
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"comma-separated contenders from {', '.join((*CONTENDERS, INFO_LOGGING))}",
    )
    parser.add_argument(
        "--info-logging",
        action=argparse.BooleanOptionalAction,
        default=False,
        help=f"also run {INFO_LOGGING} (rotaudit at log level info) at the first latency",
    )
    parser.add_argument(
        "--emulator",
        choices=sorted(EMULATORS),
        default="project",
        help="the emulator module to run (daemon.devtools.emulator)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs of each contender but the baseline per latency, interleaved; the fastest counts (default 2)",
    )
    parser.add_argument("--baseline-repeat", type=int, default=1, help="runs of the baseline (slow) per latency")
    parser.add_argument("--workers", type=int, default=4, help="rotaudit's pollers and the ceiling's workers")
    parser.add_argument("--wait-time-s", type=int, default=1, help="long-poll wait for rotaudit and the ceiling")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up on a contender after this long")
    parser.add_argument(
        "--out", type=Path, default=results.RESULTS, help="results file; its ingest section is replaced"
    )
    return parser


def run(
    *,
    events: int = 2000,
    latencies: list[float] | None = None,
    contenders: list[str] | None = None,
    info_logging: bool = False,
    emulator_name: str = "project",
    repeat: int = 2,
    baseline_repeat: int = 1,
    workers: int = 4,
    wait_time_s: int = 1,
    timeout_s: float = 600.0,
    out_dir: Path = OUT_DIR,
) -> dict[str, Any]:
    """Every contender at every latency; returns the `ingest` section of bench/results.json. Raises BenchError."""
    latencies = [0.0, 20.0] if latencies is None else latencies
    contenders = list(CONTENDERS) if contenders is None else contenders
    workload = build_workload(events)
    print(
        f"bench: {workload.messages} messages, {workload.distinct} distinct events, {workload.duplicates} duplicates;"
        f" latencies {', '.join(f'{latency:g} ms' for latency in latencies)}; contenders {', '.join(contenders)};"
        f" emulator {emulator_name}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    for n, latency in enumerate(latencies):
        order = [*contenders]
        if info_logging and n == 0 and "rotaudit" in order and INFO_LOGGING not in order:
            order.append(INFO_LOGGING)
        emulator = EmulatorProcess(latency, out_dir, EMULATORS[emulator_name])
        plan = [
            (rep, name)
            for rep in range(max(repeat, baseline_repeat))
            for name in order
            if rep < (baseline_repeat if name == "baseline" else repeat)
        ]
        try:
            for rep, name in plan:
                figures = measure(
                    name,
                    emulator,
                    workload,
                    workers=workers,
                    wait_time_s=wait_time_s,
                    out_dir=out_dir,
                    timeout_s=timeout_s,
                )
                runs.append({**figures, "repeat": rep})
                print(
                    f"bench: {latency:g} ms {name:<13} #{rep + 1} {figures['seconds']:7.2f} s "
                    f"{figures['unique_events_per_s']:8.1f} events/s "
                    f"{figures['aws_calls_per_unique_event']:6.3f} calls/event "
                    f"{figures['cpu_ms_per_unique_event']:7.3f} CPU ms/event",
                    flush=True,
                )
        finally:
            emulator.stop()
    parameters = {
        "messages": workload.messages,
        "unique_events": workload.distinct,
        "duplicates": workload.duplicates,
        "secrets": workload.secrets,
        "events_by_name": workload.by_event_name,
        "seed": SEED,
        "workers": workers,
        "wait_time_s": wait_time_s,
        "repeat": repeat,
        "baseline_repeat": baseline_repeat,
        "latency_ms": latencies,
        "contenders": [*contenders, *([INFO_LOGGING] if info_logging else [])],
        "emulator": f"{emulator_name} (python -m {EMULATORS[emulator_name]})",
        "wall_clock_s": round(time.monotonic() - started, 1),
    }
    return report.build_result(runs, latencies, parameters)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    latencies = [float(part) for part in _csv(args.latency_ms)]
    contenders = _csv(args.only)
    unknown = sorted(set(contenders) - {*CONTENDERS, INFO_LOGGING})
    if unknown or not contenders or not latencies:
        print(f"bench: unknown or missing contenders/latencies: {', '.join(unknown) or '-'}", file=sys.stderr)
        return 2
    os.environ.clear()
    os.environ.update(clean_env())  # the harness's own clients too: fake credentials, nothing reaches AWS
    try:
        result = run(
            events=args.events,
            latencies=latencies,
            contenders=contenders,
            info_logging=args.info_logging,
            emulator_name=args.emulator,
            repeat=args.repeat,
            baseline_repeat=args.baseline_repeat,
            workers=args.workers,
            wait_time_s=args.wait_time_s,
            timeout_s=args.timeout_s,
        )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    path = results.update({"ingest": result}, args.out)
    print()
    print(report.summary(result))
    print(f"\nbench: wrote the ingest section of {path}, and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
