"""`rotaudit evidence`: a period's rotation, remediation and compliance report as CSV (streamed), JSON or HTML."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from daemon.aws import Aws
from daemon.cli.common import add_command, load_settings, missing_table_named, open_aws, say
from daemon.errors import EXIT_OK, ConfigError
from daemon.evidence.model import SecretFigures
from daemon.evidence.reader import PeriodReader, resolve_secret
from daemon.evidence.render_csv import CsvReport
from daemon.evidence.render_html import render_html
from daemon.evidence.render_json import document, render_json
from daemon.evidence.report import Built, build
from daemon.table import utc_iso
from daemon.timer import utc_now

DEFAULT_DAYS = 90


def register(commands: Any) -> None:
    """Add `evidence`; it sets `handler`: an async function of the parsed args returning an exit code."""
    cmd = add_command(
        commands,
        "evidence",
        show_evidence,
        help="a period's rotation, remediation and compliance evidence (CSV, JSON or HTML)",
        description="Per secret and for the fleet, over [--since, --until): rotations started, succeeded and failed; "
        "remediations and their outcomes; time to recover per failure; the longest time over the age limit; the "
        "share of compliant scan runs. Secrets ever out of compliance first. Every format carries a SHA-256 "
        "manifest of what the report was built from (also printed on stderr).\n"
        "--output csv (streamed): one row per secret, a fleet row, `#` manifest lines. --output json: one object, "
        "{report, period, fleet, secrets, failures, reads, manifest}. --output html: one self-contained file.",
        examples=(
            "rotaudit evidence --since 2026-07-01 --until 2026-10-01 --output html --file q3.html",
            "rotaudit evidence --output csv > last-90-days.csv",
            "rotaudit evidence --output json --secret app/db | jq .fleet",
        ),
        formats=("csv", "json", "html"),
    )
    cmd.add_argument("--since", help=f"start, ISO date or UTC time (default: --until minus {DEFAULT_DAYS} days)")
    cmd.add_argument("--until", help="end, excluded; ISO date or UTC time (default: now)")
    cmd.add_argument("--secret", action="append", default=[], help="only this secret (name or ARN); repeatable")
    cmd.add_argument("--file", type=Path, help="write here instead of stdout")
    cmd.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    cmd.add_argument("--config", type=Path, help="TOML file; environment variables override it")


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
    config = load_settings(args, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    out = args.file.open("w", encoding="utf-8", newline="") if args.file else sys.stdout
    try:
        async with open_aws(config, ("dynamodb",)) as aws:
            with missing_table_named(config, table):
                built, secrets = await _build(args, aws, table, since, until, out)
        if secrets is not None:
            doc = document(built, secrets, table=table, generated_at=utc_iso(utc_now()))
            out.write(render_json(doc) if args.output == "json" else render_html(doc))
    finally:
        if args.file:
            out.close()
    say(args, f"rotaudit evidence: manifest sha256 {built.manifest['sha256']}")
    return EXIT_OK


async def _build(
    args: argparse.Namespace, aws: Aws, table: str, since: datetime, until: datetime, out: IO[str]
) -> tuple[Built, list[SecretFigures] | None]:
    """Read and aggregate; the CSV is written as it goes (None for the secrets), JSON and HTML keep them."""
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
        return built, None
    secrets: list[SecretFigures] = []
    return await build(reader, secrets.append, secrets=arns, keep_failures=True), secrets
