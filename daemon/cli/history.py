"""`rotaudit history SECRET`: a secret's audit items, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from daemon.audit import AuditStore
from daemon.cli.common import open_aws
from daemon.cli.output import json_default, print_table
from daemon.config import load_config
from daemon.errors import EXIT_OK


def register(commands: Any) -> None:
    """Add `history`; it sets `handler`: an async function of the parsed args returning an exit code."""
    hist = commands.add_parser("history", help="a secret's audit items, newest first")
    hist.add_argument("secret", help="secret name or ARN")
    hist.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    hist.add_argument("--limit", type=int, default=100)
    hist.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    hist.add_argument("--config", type=Path)
    hist.set_defaults(handler=show_history)


async def show_history(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=() if args.table else ("audit_table",))
    async with open_aws(config, ("dynamodb",)) as aws:
        items = await AuditStore(aws, args.table or config.audit_table).history(args.secret, limit=args.limit)
    if args.json:
        print(json.dumps(items, default=json_default, indent=2))
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
