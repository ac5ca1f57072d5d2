"""`rotaudit sync [--pair NAME]`: sync derived secrets by hand, one line (or JSON object) per pair."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from daemon.cli.common import add_command, load_settings, open_aws
from daemon.cli.output import print_json, print_table
from daemon.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from daemon.metrics import Metrics
from daemon.sync.metrics import SyncMetrics
from daemon.sync.syncer import Syncer, SyncOutcome

SERVICES = ("secretsmanager", "dynamodb", "sns", "ecs")


def register(commands: Any) -> None:
    """Add subcommands; each sets `handler`: an async function of the parsed args returning an exit code."""
    sync = add_command(
        commands,
        "sync",
        _sync,
        help="sync derived secrets (ROTAUDIT_SYNC_PAIRS) now, once",
        description="Render each pair's target from its source, write it only on a difference, audit the outcome. "
        "The periodic reconcile runs inside `rotaudit run`; this runs one pass by hand.\n"
        "--output json: one object, {results: [{pair, outcome, trigger, reason, detail, source_arn, target_arn, "
        "target_version_id, redeployed, ...}, ...]} (empty fields left out); never a secret value.",
        examples=("rotaudit sync", "rotaudit sync --pair app-database-url --output json"),
        exit_codes={EXIT_FAILURE: "a pair failed (its reason is in the output), or an AWS call failed"},
    )
    sync.add_argument("--once", action="store_true", help="accepted for compatibility: `rotaudit sync` runs once")
    sync.add_argument("--pair", metavar="NAME", help="only this pair (default: every pair)")
    sync.add_argument("--config", type=Path, help="TOML file; environment variables override it")


async def _sync(args: argparse.Namespace) -> int:
    config = load_settings(args, required=("audit_table",))
    names = [pair.name for pair in config.sync_pairs]
    if not names:
        raise ConfigError(["ROTAUDIT_SYNC_PAIRS: no sync pairs configured"])
    if args.pair is not None and args.pair not in names:
        raise ConfigError([f"--pair: no sync pair named {args.pair!r} (configured: {', '.join(names)})"])
    metrics = Metrics()
    async with open_aws(config, SERVICES, metrics=metrics) as aws:
        results = await Syncer.from_config(aws, config, SyncMetrics(metrics.registry)).run_once(args.pair)
    shown = [{key: value for key, value in asdict(result).items() if value not in ("", ())} for result in results]
    if args.output == "json":
        print_json({"results": shown})
    else:
        rows = [
            (
                str(row["pair"]),
                str(row["outcome"]),
                str(row.get("target_name") or row.get("target_arn", "-")),
                " ".join(str(row[key]) for key in ("reason", "detail") if key in row) or "-",
            )
            for row in shown
        ]
        print_table(("PAIR", "OUTCOME", "TARGET", "REASON"), rows)
    return EXIT_FAILURE if any(result.outcome is SyncOutcome.ERROR for result in results) else EXIT_OK
