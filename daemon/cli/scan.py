"""`rotaudit scan` (run the age scan now) and `rotaudit report` (which secrets need rotation, from the table)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from daemon.cli.common import add_command, add_json_alias, load_settings, missing_table_named, open_aws
from daemon.cli.output import print_json, print_table
from daemon.errors import EXIT_FAILURE, EXIT_FINDINGS, EXIT_OK
from daemon.features import build_findings, scan_observer
from daemon.findings.metrics import FindingsMetrics
from daemon.scan.metrics import ScanMetrics
from daemon.scan.report import get_run, latest_run, run_rows
from daemon.scan.scanner import Scanner

_HIDDEN = frozenset({"pk", "sk", "kind", "status_name", "run_id"})


def register(commands: Any) -> None:
    """Add subcommands; each sets `handler`: an async function of the parsed args returning an exit code."""
    scan = add_command(
        commands,
        "scan",
        scan_once,
        help="run the age scan now, once, and record it in the audit table",
        description="Check every secret carrying ROTAUDIT_SCAN_TAG (in ROTAUDIT_SCAN_TARGETS' accounts and regions) "
        "now, outside the daemon's schedule; write one row per secret and a run item to the audit table.\n"
        "--output json: one object, {run_id, outcome, checked, flagged, failed_scopes: [scope, ...]}.",
        examples=(
            "rotaudit scan",
            "rotaudit scan --region eu-west-1 --table rotaudit-audit --output json | jq -r .run_id",
            "rotaudit scan && rotaudit report --fail-on needs_rotation",
        ),
        exit_codes={EXIT_FAILURE: "an AWS call failed, or the scan could not list some scopes (named on stderr)"},
    )
    scan.add_argument("--once", action="store_true", help="accepted for compatibility: `rotaudit scan` runs once")
    scan.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    scan.add_argument("--config", type=Path, help="TOML file; environment variables override it")

    report = add_command(
        commands,
        "report",
        report_run,
        help="secrets by status from a scan run, flagged first",
        description="Secrets by status from a scan run (the latest by default), those needing rotation first.\n"
        "--output json: one object, {run: {run_id, trigger, started_at, finished_at, checked, flagged, ...}, "
        "secrets: [{secret_name, status, age_days, account, region, reasons, ...}, ...]}.",
        examples=(
            "rotaudit report --status needs_rotation",
            "rotaudit report --fail-on needs_rotation   # in a pipeline: exit 4 when any secret is overdue",
            "rotaudit report --output json | jq -r '.secrets[] | select(.status == \"needs_rotation\") | .secret_name'",
        ),
        exit_codes={
            EXIT_FAILURE: "an AWS call failed, or no such scan run (none yet, or an unknown --run)",
            EXIT_FINDINGS: "--fail-on needs_rotation, and the run found secrets that need rotation",
        },
    )
    report.add_argument("--run", default="latest", metavar="RUN|latest", help="run id (default: the latest run)")
    report.add_argument("--status", choices=("needs_rotation", "ok"), help="only secrets with this status")
    report.add_argument(
        "--fail-on",
        choices=("needs_rotation",),
        help=f"exit {EXIT_FINDINGS} when the run found any secret with this status (after printing the report)",
    )
    report.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    report.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    add_json_alias(report)


async def scan_once(args: argparse.Namespace) -> int:
    config = load_settings(args, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    services = ("dynamodb", "secretsmanager", "sts") + (("securityhub",) if config.securityhub else ())
    async with open_aws(config, services) as aws:
        registry = CollectorRegistry()
        metrics = ScanMetrics(registry, age_gauge=False)
        # The same findings as the daemon's timer: the same observer on the same scanner code path.
        findings = build_findings(aws, config, FindingsMetrics(registry)) if config.securityhub else None
        observers = [scan_observer(findings)] if findings is not None else []
        scanner = Scanner.from_config(aws, config, metrics, table=table, observers=observers)
        with missing_table_named(config, table):
            # Before the run, so a missing table is one line saying what to do, not the scanner's failure log too.
            await aws.call("dynamodb", "describe_table", TableName=table)
            result = await scanner.run_once()
    if args.output == "json":
        print_json({**result.summary(), "outcome": result.outcome, "failed_scopes": list(result.failed_scopes)})
    else:
        print(
            f"scan run {result.run_id}: {result.checked} secrets checked, {result.flagged} need rotation "
            f"(`rotaudit report --run {result.run_id}` lists them)"
        )
    if result.failed_scopes:
        print(f"rotaudit scan: incomplete: could not list {', '.join(result.failed_scopes)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


async def report_run(args: argparse.Namespace) -> int:
    config = load_settings(args, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    async with open_aws(config, ("dynamodb",)) as aws:
        with missing_table_named(config, table):
            run = await latest_run(aws, table) if args.run == "latest" else await get_run(aws, table, args.run)
            if run is None:
                which = "yet" if args.run == "latest" else args.run
                print(f"rotaudit report: no scan run {which} in {table}: run `rotaudit scan`", file=sys.stderr)
                return EXIT_FAILURE
            rows = [
                {k: v for k, v in row.items() if k not in _HIDDEN}
                async for row in run_rows(aws, table, str(run["run_id"]), args.status)
            ]
    if args.output == "json":
        run_view = {k: v for k, v in run.items() if k not in ("pk", "sk", "kind")}
        print_json({"run": run_view, "secrets": rows})
    else:
        print(_headline(run))
        if rows:
            _print_table(rows)
        else:
            print(f"no secrets{' with status ' + args.status if args.status else ''} in this run")
    # The run's own count, not the rows shown: `--status ok --fail-on needs_rotation` still gates on the run.
    failing = args.fail_on == "needs_rotation" and int(run.get("flagged", 0)) > 0
    return EXIT_FINDINGS if failing else EXIT_OK


def _headline(run: dict[str, Any]) -> str:
    incomplete = f"; could not list {', '.join(run['failed_scopes'])}" if run.get("failed_scopes") else ""
    return (
        f"run {run['run_id']} ({run.get('trigger', '?')}, "
        f"{run.get('started_at', '?')} to {run.get('finished_at', '?')}): "
        f"{run.get('checked', 0)} checked, {run.get('flagged', 0)} need rotation "
        f"(tag {run.get('tag', '?')}, max age {run.get('max_age_days', '?')} days){incomplete}"
    )


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("STATUS", "AGE_DAYS", "SECRET", "ACCOUNT", "REGION", "REASONS")
    cells = [
        (
            str(row.get("status", "")),
            str(row.get("age_days", "")),
            str(row.get("secret_name", "")),
            str(row.get("account", "")),
            str(row.get("region", "")),
            ",".join(row.get("reasons", [])),
        )
        for row in rows
    ]
    print_table(header, cells)
