"""`python -m tests.chaos [--remediation] [--short] [--events N] [--replicas N] [--out FILE]`: one chaos run, its
figures, exit 0 or 1.

The ingest profile by default; `--remediation` runs the remediation profile (`tests.chaos.remediation`). Exit 0
when every check passed, 1 when one failed or the run could not finish (each reason is printed), 2 on bad
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
from tests.chaos.profiles import FULL, REMEDIATION_FULL, REMEDIATION_SHORT, SHORT
from tests.chaos.remediation.run import RemediationRun
from tests.support import ROOT

DEFAULT_OUT = ROOT / "tests" / "chaos" / "out" / "results.json"
REMEDIATION_OUT = ROOT / "tests" / "chaos" / "out" / "remediation-results.json"
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


REMEDIATION_SHOWN = (
    ("secrets", "secrets (one rotation each, started by the run)"),
    ("duplicated_secrets", "  with every event delivered twice"),
    ("failures_injected", "failures injected (failed attempts)"),
    ("failed_attempts", "failed attempts in all (with the templates' own)"),
    ("failed_rotations", "failed rotations"),
    ("recovered_by_secrets_managers_retries", "  recovered by Secrets Manager's retries"),
    ("not_recovered_by_secrets_managers_retries", "  not recovered by them"),
    ("rotations_by_rotaudit", "rotations started by rotaudit"),
    ("remediation_items", "remediation items"),
    ("remediation_status", "  by status"),
    ("notifications", "notifications received"),
    ("notifications_by_kind", "  by kind"),
    ("deliveries_processed", "deliveries processed"),
    ("kills", "SIGKILLs (each followed by a restart)"),
    ("stall_s", "emulator stalled, s (SIGSTOP/SIGCONT)"),
    ("rolling_restarts", "rolling SIGTERM restarts"),
    ("sigterm_exit_codes", "exit codes after SIGTERM"),
    ("faults_total", "faults injected by the proxy"),
    ("invariants", "invariants"),
    ("a_current_rejected_escalated", "  AWSCURRENT rejected, escalated"),
    ("a_current_rejected_unescalated", "  AWSCURRENT rejected, not escalated (a)"),
    ("b_unlabelled_accepted_versions", "  accepted versions left unlabelled (b)"),
    ("c_rotate_secret_refusals", "  RotateSecret refusals (c)"),
    ("d_repeated_notifications", "  repeated notifications (d)"),
    ("remediations_left_open", "remediations left open"),
    ("stuck_remediations", "  stuck: open with no wake-up"),
    ("wall_s", "wall time, s"),
)


def render(figures: dict[str, Any], failures: list[str], shown: tuple[tuple[str, str], ...] = SHOWN) -> str:
    width = max(len(label) for _, label in shown)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    for key, label in shown:
        if key in figures:
            value = figures[key]
            text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
            lines.append(f"{label:<{width}}  {text}")
    lines.append("")
    lines.append("PASSED: every check held" if not failures else f"FAILED ({len(failures)}):")
    lines.extend(f"  - {failure}" for failure in failures)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--remediation", action="store_true", help="the remediation profile (real rotation failures)")
    parser.add_argument("--short", action="store_true", help="the lean run `make test` uses (1,000 events)")
    parser.add_argument("--events", type=int, help="messages to send (a third are duplicates); default 10,000")
    parser.add_argument("--replicas", type=int, help="daemon replicas; default 3")
    parser.add_argument("--fault-rate", type=float, help="share of AWS calls answered with a fault; default 0.05")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, help=f"JSON figures (default {DEFAULT_OUT}, or {REMEDIATION_OUT})")
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in (("messages", args.events), ("replicas", args.replicas), ("fault_rate", args.fault_rate))
        if value is not None
    }
    if overrides.get("messages", 30) < 30 or overrides.get("replicas", 1) < 1:
        parser.error("--events must be at least 30 and --replicas at least 1")
    if args.remediation and "messages" in overrides:
        parser.error("--events is for the ingest profile; the remediation profile rotates one secret per scenario")
    out: Path = (args.out or (REMEDIATION_OUT if args.remediation else DEFAULT_OUT)).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    name = f"{'remediation' if args.remediation else 'ingest'} {'short' if args.short else 'full'}"
    print(f"chaos: {name} run, seed {args.seed}, logs in {out.parent / 'logs'}", flush=True)
    run: Run
    if args.remediation:
        profile = REMEDIATION_SHORT if args.short else REMEDIATION_FULL
        run = RemediationRun(dataclasses.replace(profile, **overrides), out, args.seed)
    else:
        run = Run(dataclasses.replace(SHORT if args.short else FULL, **overrides), out, args.seed)
    try:
        figures, failures = run.execute()
    except ChaosError as exc:
        figures, failures = run.figures, [*run.failures, f"the run did not finish: {exc}"]
    except Exception as exc:  # a harness bug or an unreachable emulator: still leave the figures behind
        traceback.print_exc()
        figures, failures = run.figures, [*run.failures, f"the harness failed: {exc!r}"]
    figures = {"profile": name, "seed": args.seed, **figures}
    out.write_text(json.dumps({"figures": figures, "failures": failures}, indent=2, sort_keys=True, default=str) + "\n")
    print(render(figures, failures, REMEDIATION_SHOWN if args.remediation else SHOWN))
    print(f"figures written to {out}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
