"""`rotaudit doctor`: can this deployment work? A table of checks (or JSON); exit 0 when none fails, 1 when any does."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from daemon.cli.common import open_aws
from daemon.cli.output import aligned
from daemon.config import load_config
from daemon.doctor.result import Check, Status, as_json, exit_code, failed, skipped
from daemon.doctor.run import SERVICES, Options, diagnose
from daemon.errors import ConfigError
from daemon.logs import configure_logging

EPILOG = """\
example:
  rotaudit doctor --role-arn "$(terraform output -raw task_role_arn)" --probe

exit codes:
  0  every check passed (warnings and skips allowed)
  1  a check failed: its FIX column says what to do
"""


def register(commands: Any) -> None:
    """Add `doctor`; it sets `handler`: an async function of the parsed args returning an exit code."""
    doctor = commands.add_parser(
        "doctor",
        help="check that this deployment can work: config, resources, rules, CloudTrail, IAM, scan roles",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument("--output", choices=("text", "json"), default="text", help="text table or one JSON object")
    doctor.add_argument("--role-arn", default="", help="the task role to simulate (default: the caller's role)")
    doctor.add_argument("--prefix", default="rotaudit", help="resource name prefix, to name rules (default: rotaudit)")
    doctor.add_argument("--probe", action="store_true", help="also send a probe event through EventBridge")
    doctor.add_argument(
        "--probe-timeout", type=float, default=60.0, metavar="SECONDS", help="how long to wait for the probe (60)"
    )
    doctor.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    doctor.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    doctor.set_defaults(handler=run_doctor)


async def run_doctor(args: argparse.Namespace) -> int:
    configure_logging("error", "auto")  # the checks report what the daemon's start-up checks would log
    try:
        config = load_config(
            toml_path=args.config, required=("queue_url",) if args.table else ("queue_url", "audit_table")
        )
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
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
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
