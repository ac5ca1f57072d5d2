"""`rotaudit history SECRET`: a secret's audit items, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.audit import AuditStore
from daemon.cli.common import add_command, add_json_alias, load_settings, missing_table_named, open_aws, positive_int
from daemon.cli.output import print_json, print_table
from daemon.errors import EXIT_OK


def register(commands: Any) -> None:
    """Add `history`; it sets `handler`: an async function of the parsed args returning an exit code."""
    hist = add_command(
        commands,
        "history",
        show_history,
        help="a secret's audit items, newest first",
        description="A secret's audit items, newest first: its rotation events, remediations, scans and syncs.\n"
        "--output json: one object, {secret, table, items: [audit item, ...]}, each item as the table holds it.",
        examples=(
            "rotaudit history app/db",
            "rotaudit history arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf --limit 20",
            "rotaudit history app/db --output json | jq '.items[] | select(.kind == \"remediation\")'",
        ),
    )
    hist.add_argument("secret", help="secret name or ARN")
    hist.add_argument("--limit", type=positive_int, default=100, help="at most N items (default 100)")
    hist.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    hist.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    add_json_alias(hist)


async def show_history(args: argparse.Namespace) -> int:
    config = load_settings(args, required=() if args.table else ("audit_table",))
    table = args.table or config.audit_table
    async with open_aws(config, ("dynamodb",)) as aws:
        with missing_table_named(config, table):
            items = await AuditStore(aws, table).history(args.secret, limit=args.limit)
    if args.output == "json":
        print_json({"secret": args.secret, "table": table, "items": items})
        return EXIT_OK
    if not items:
        print(f"no audit items for {args.secret}")
        return EXIT_OK
    rows = [
        (
            # The sort key's time: what orders the history (a scan row's is its window's start).
            str(item.get("sk", "")).split("#", 1)[0] or str(item.get("event_time", "")),
            str(item.get("kind", "")),
            str(item.get("event_name", item.get("status", ""))),
            str(item.get("rotation_id", item.get("run_id", ""))),
            str(item.get("failed_step", "")),
        )
        for item in items
    ]
    print_table(("TIME", "KIND", "EVENT", "ROTATION", "STEP"), rows)
    return EXIT_OK
