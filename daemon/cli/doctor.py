"""`rotaudit doctor`: can this deployment work? A table of checks (or JSON); exit 0 when none fails, 1 when any does."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.cli.common import add_command, load_settings, log_level, open_aws, positive_float
from daemon.cli.output import aligned
from daemon.config import no_color
from daemon.doctor.result import Check, Status, as_json, exit_code, failed, skipped
from daemon.doctor.run import SERVICES, Options, diagnose
from daemon.errors import EXIT_FAILURE, ConfigError
from daemon.logs import configure_logging


def register(commands: Any) -> None:
    """Add `doctor` (text table or one JSON object; exit 0 when no check fails, 1 when any does)."""
    doctor = add_command(
        commands,
        "doctor",
        run_doctor,
        help="check that this deployment can work: config, resources, rules, CloudTrail, IAM, scan roles",
        description="Can this deployment work? Config, queue and DLQ, table, topic, EventBridge rules and the queue\n"
        "policy, a logging CloudTrail trail, the task role's IAM (SimulatePrincipalPolicy) and the scan roles.\n"
        "--output json: one object, {ok, summary, checks: [{name, status, detail, fix}, ...]}.",
        examples=(
            'rotaudit doctor --role-arn "$(terraform output -raw task_role_arn)" --probe',
            "rotaudit doctor --output json | jq '.checks[] | select(.status == \"fail\")'",
        ),
        exit_codes={EXIT_FAILURE: "a check failed: its FIX column says what to do (warnings and skips do not fail)"},
    )
    doctor.add_argument("--role-arn", default="", help="the task role to simulate (default: the caller's role)")
    doctor.add_argument("--prefix", default="rotaudit", help="resource name prefix, to name rules (default: rotaudit)")
    doctor.add_argument("--probe", action="store_true", help="also send a probe event through EventBridge")
    doctor.add_argument(
        "--probe-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the probe (60)",
    )
    doctor.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    doctor.add_argument("--config", type=Path, help="TOML file; environment variables override it")


async def run_doctor(args: argparse.Namespace) -> int:
    # The checks report what the daemon's start-up checks would log: its warnings only with -v.
    configure_logging(log_level(args, "error"), "auto", color=not no_color())
    try:
        config = load_settings(args, required=("queue_url",) if args.table else ("queue_url", "audit_table"))
    except ConfigError as exc:
        checks = [failed("config", problem, "fix the setting (README: Configuration)") for problem in exc.problems] + [
            skipped("aws", "not checked: the settings are invalid")
        ]
    else:
        options = Options(
            table=args.table or "",
            prefix=args.prefix,
            role_arn=args.role_arn,
            probe=args.probe,
            probe_timeout_s=args.probe_timeout,
        )
        async with open_aws(config, SERVICES) as aws:
            checks = await diagnose(aws, config, options)
    _print(checks, args.output)
    return exit_code(checks)


def _print(checks: list[Check], output: str) -> None:
    if output == "json":
        print(json.dumps(as_json(checks), indent=2))
        return
    colour = sys.stdout.isatty() and not no_color()
    rows = [(c.name, c.status.value.upper(), f"{c.detail}; fix: {c.fix}" if c.fix else c.detail) for c in checks]
    for line in aligned(("CHECK", "RESULT", "DETAIL / FIX"), rows):
        print(_coloured(line) if colour else line)
    failures = sum(1 for c in checks if c.status is Status.FAIL)
    print(f"\n{len(checks)} checks: {failures} failed" if failures else f"\n{len(checks)} checks: all passed")


def _coloured(line: str) -> str:
    for word, code in (("FAIL", "31"), ("WARN", "33"), ("PASS", "32")):
        if f"  {word}  " in line:
            return line.replace(f"  {word}  ", f"  \033[{code}m{word}\033[0m  ", 1)
    return line
