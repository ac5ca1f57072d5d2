"""`python -m tests.chaos [--events N] [--replicas N] [--short] [--out FILE]`: one chaos run, its figures, exit 0 or 1.

Exit 0 when every check passed, 1 when one failed or the run could not finish (each reason is printed), 2 on bad
arguments. The figures are printed as a table and written to `--out` as JSON (with the failures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tests.chaos.harness import Run
from tests.chaos.processes import ChaosError
from tests.chaos.profiles import FULL, SHORT
from tests.support import ROOT

DEFAULT_OUT = ROOT / "tests" / "chaos" / "out" / "results.json"
SHOWN = (
    ("messages_sent", "messages sent"),
    ("distinct_events", "distinct events"),
    ("event_items", "event items in the table"),
    ("duplicate_items", "duplicate items"),
    ("lost_events", "lost events"),
    ("kills", "SIGKILLs (each followed by a restart)"),
    ("stall_s", "emulator stalled, s (SIGSTOP/SIGCONT)"),
    ("rolling_restarts", "rolling SIGTERM restarts"),
    ("sigterm_exit_codes", "exit codes after SIGTERM"),
    ("faults_total", "faults injected"),
    ("faults_injected", "  by kind"),
    ("failed_rotations", "failed rotations"),
    ("remediation_items", "remediation items"),
    ("remediation_status", "  by status"),
    ("notifications", "notifications received"),
    ("notified_rotations", "  distinct rotations notified"),
    ("repeated_notifications", "  repeats (publish response lost)"),
    ("lost_notifications", "  failed rotations never notified"),
    ("scan_windows", "scan windows"),
    ("scan_runs", "scan runs (one per window)"),
    ("dlq_messages", "messages in the DLQ"),
    ("wall_s", "wall time, s"),
)


def render(figures: dict[str, Any], failures: list[str]) -> str:
    width = max(len(label) for _, label in SHOWN)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    for key, label in SHOWN:
        if key in figures:
            value = figures[key]
            shown = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
            lines.append(f"{label:<{width}}  {shown}")
    lines.append("")
    lines.append("PASSED: every check held" if not failures else f"FAILED ({len(failures)}):")
    lines.extend(f"  - {failure}" for failure in failures)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the lean run `make test` uses (1,000 events)")
    parser.add_argument("--events", type=int, help="messages to send (a third are duplicates); default 10,000")
    parser.add_argument("--replicas", type=int, help="daemon replicas; default 3")
    parser.add_argument("--fault-rate", type=float, help="share of AWS calls answered with a fault; default 0.05")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON figures (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    profile = SHORT if args.short else FULL
    overrides = {
        name: value
        for name, value in (("messages", args.events), ("replicas", args.replicas), ("fault_rate", args.fault_rate))
        if value is not None
    }
    if overrides.get("messages", 30) < 30 or overrides.get("replicas", 1) < 1:
        parser.error("--events must be at least 30 and --replicas at least 1")
    profile = dataclasses.replace(profile, **overrides)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"chaos: {'short' if args.short else 'full'} run, seed {args.seed}, logs in {out.parent / 'logs'}", flush=True
    )
    run = Run(profile, out, args.seed)
    try:
        figures, failures = run.execute()
    except ChaosError as exc:
        figures, failures = run.figures, [*run.failures, f"the run did not finish: {exc}"]
    except Exception as exc:  # a harness bug or an unreachable emulator: still leave the figures behind
        traceback.print_exc()
        figures, failures = run.figures, [*run.failures, f"the harness failed: {exc!r}"]
    figures = {"profile": "short" if args.short else "full", "seed": args.seed, **figures}
    out.write_text(json.dumps({"figures": figures, "failures": failures}, indent=2, sort_keys=True, default=str) + "\n")
    print(render(figures, failures))
    print(f"figures written to {out}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
