"""`rotaudit sync --once [--pair NAME]`: sync derived secrets by hand, print one JSON line per pair."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from daemon.cli.common import open_aws
from daemon.config import load_config
from daemon.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from daemon.metrics import Metrics
from daemon.sync.metrics import SyncMetrics
from daemon.sync.syncer import Syncer, SyncOutcome

SERVICES = ("secretsmanager", "dynamodb", "sns", "ecs")


def register(commands: Any) -> None:
    """Add subcommands; each sets `handler`: an async function of the parsed args returning an exit code."""
    sync = commands.add_parser(
        "sync",
        help="sync derived secrets (ROTAUDIT_SYNC_PAIRS) now; exit 1 when a pair fails",
        description="Render each pair's target from its source, write it only on a difference, audit the outcome. "
        "The periodic reconcile runs inside `rotaudit run`; this runs one pass by hand.",
    )
    sync.add_argument("--once", action="store_true", required=True, help="run one pass and exit (required)")
    sync.add_argument("--pair", metavar="NAME", help="only this pair (default: every pair)")
    sync.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    sync.set_defaults(handler=_sync)


async def _sync(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=("audit_table",))
    names = [pair.name for pair in config.sync_pairs]
    if not names:
        raise ConfigError(["ROTAUDIT_SYNC_PAIRS: no sync pairs configured"])
    if args.pair is not None and args.pair not in names:
        raise ConfigError([f"--pair: no sync pair named {args.pair!r} (configured: {', '.join(names)})"])
    metrics = Metrics()
    async with open_aws(config, SERVICES, metrics=metrics) as aws:
        results = await Syncer.from_config(aws, config, SyncMetrics(metrics.registry)).run_once(args.pair)
    for result in results:
        print(json.dumps({key: value for key, value in asdict(result).items() if value not in ("", ())}))
    return EXIT_FAILURE if any(result.outcome is SyncOutcome.ERROR for result in results) else EXIT_OK
