"""`rotaudit scan --once` (run the age scan now) and `rotaudit report` (which secrets need rotation, from the table)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from daemon.cli.common import open_aws
from daemon.cli.output import json_default, print_table
from daemon.config import load_config
from daemon.errors import EXIT_FAILURE, EXIT_OK
from daemon.features import build_findings, scan_observer
from daemon.findings.metrics import FindingsMetrics
from daemon.scan.metrics import ScanMetrics
from daemon.scan.report import get_run, latest_run, run_rows
from daemon.scan.scanner import Scanner

_HIDDEN = frozenset({"pk", "sk", "kind", "status_name", "run_id"})


def register(commands: Any) -> None:
    """Add subcommands; each sets `handler`: an async function of the parsed args returning an exit code."""
    scan = commands.add_parser("scan", help="run the age scan now; print {run_id, checked, flagged} as JSON")
    scan.add_argument(
        "--once", action="store_true", required=True, help="one run now (the daemon runs the schedule itself)"
    )
    scan.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    scan.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    scan.set_defaults(handler=scan_once)

    report = commands.add_parser("report", help="secrets by status from a scan run, flagged first")
    report.add_argument("--run", default="latest", metavar="RUN|latest", help="run id (default: the latest run)")
    report.add_argument("--status", choices=("needs_rotation", "ok"), help="only secrets with this status")
    report.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    report.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    report.add_argument("--config", type=Path)
    report.set_defaults(handler=report_run)


async def scan_once(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=() if args.table else ("audit_table",))
    services = ("dynamodb", "secretsmanager", "sts") + (("securityhub",) if config.securityhub else ())
    async with open_aws(config, services) as aws:
        registry = CollectorRegistry()
        metrics = ScanMetrics(registry, age_gauge=False)
        # The same findings as the daemon's timer: the same observer on the same scanner code path.
        findings = build_findings(aws, config, FindingsMetrics(registry)) if config.securityhub else None
        observers = [scan_observer(findings)] if findings is not None else []
        table = args.table or config.audit_table
        scanner = Scanner.from_config(aws, config, metrics, table=table, observers=observers)
        result = await scanner.run_once()
    print(json.dumps(result.summary()))
    if result.failed_scopes:
        print(f"rotaudit: scan incomplete: could not list {', '.join(result.failed_scopes)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


async def report_run(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    async with open_aws(config, ("dynamodb",)) as aws:
        run = await latest_run(aws, table) if args.run == "latest" else await get_run(aws, table, args.run)
        if run is None:
            print(f"rotaudit: no scan run {'yet' if args.run == 'latest' else args.run} in {table}", file=sys.stderr)
            return EXIT_FAILURE
        rows = [
            {k: v for k, v in row.items() if k not in _HIDDEN}
            async for row in run_rows(aws, table, str(run["run_id"]), args.status)
        ]
    if args.json:
        run_view = {k: v for k, v in run.items() if k not in ("pk", "sk", "kind")}
        print(json.dumps({"run": run_view, "secrets": rows}, default=json_default, indent=2))
        return EXIT_OK
    print(_headline(run))
    if not rows:
        print(f"no secrets{' with status ' + args.status if args.status else ''} in this run")
        return EXIT_OK
    _print_table(rows)
    return EXIT_OK


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
