"""`rotaudit evidence`: a period's rotation, remediation and compliance report as CSV (streamed), JSON or HTML."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.cli.common import open_aws
from daemon.config import load_config
from daemon.errors import EXIT_OK, ConfigError
from daemon.evidence.model import SecretFigures
from daemon.evidence.reader import PeriodReader, resolve_secret
from daemon.evidence.render_csv import CsvReport
from daemon.evidence.render_html import render_html
from daemon.evidence.render_json import document, render_json
from daemon.evidence.report import build
from daemon.table import utc_iso
from daemon.timer import utc_now

DEFAULT_DAYS = 90


def register(commands: Any) -> None:
    """Add `evidence`; it sets `handler`: an async function of the parsed args returning an exit code."""
    cmd = commands.add_parser("evidence", help="a period's rotation and compliance evidence (CSV, JSON or HTML)")
    cmd.add_argument("--since", help=f"start, ISO date or UTC time (default: --until minus {DEFAULT_DAYS} days)")
    cmd.add_argument("--until", help="end, excluded; ISO date or UTC time (default: now)")
    cmd.add_argument("--output", choices=("csv", "json", "html"), default="csv", help="format (default csv)")
    cmd.add_argument("--secret", action="append", default=[], help="only this secret (name or ARN); repeatable")
    cmd.add_argument("--file", type=Path, help="write here instead of stdout")
    cmd.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    cmd.add_argument("--config", type=Path)
    cmd.set_defaults(handler=show_evidence)


def parse_moment(flag: str, value: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC unless it says otherwise); a ConfigError naming the flag."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError([f"{flag}: {value!r} is not an ISO-8601 date or time (e.g. 2026-07-01)"]) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def period(since: str | None, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    end = parse_moment("--until", until) if until else now.replace(microsecond=0)
    start = parse_moment("--since", since) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ConfigError([f"--since ({utc_iso(start)}) must be before --until ({utc_iso(end)})"])
    return start, end


async def show_evidence(args: argparse.Namespace) -> int:
    since, until = period(args.since, args.until, utc_now())
    config = load_config(toml_path=args.config, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    out = args.file.open("w", encoding="utf-8", newline="") if args.file else sys.stdout
    try:
        async with open_aws(config, ("dynamodb",)) as aws:
            arns = []
            for wanted in args.secret:
                arn = await resolve_secret(aws, table, wanted)
                if arn is None:
                    raise ConfigError([f"--secret: no audit item names {wanted!r} in {table}"])
                arns.append(arn)
            reader = PeriodReader(aws, table, since, until)
            if args.output == "csv":
                csv_report = CsvReport()
                built = await build(reader, csv_report.add, secrets=arns)
                csv_report.finish(out, built)
                print(f"rotaudit evidence: manifest sha256 {built.manifest['sha256']}", file=sys.stderr)
                return EXIT_OK
            secrets: list[SecretFigures] = []
            built = await build(reader, secrets.append, secrets=arns, keep_failures=True)
        doc = document(built, secrets, table=table, generated_at=utc_iso(utc_now()))
        out.write(render_json(doc) if args.output == "json" else render_html(doc))
    finally:
        if args.file:
            out.close()
    print(f"rotaudit evidence: manifest sha256 {built.manifest['sha256']}", file=sys.stderr)
    return EXIT_OK
