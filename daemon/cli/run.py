"""`rotaudit run`: the daemon in the foreground, configured by ROTAUDIT_* variables and an optional TOML file."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from daemon.app import Daemon
from daemon.cli.common import add_command, load_settings, log_level
from daemon.config import no_color
from daemon.logs import configure_logging


def register(commands: Any) -> None:
    """Add `run`; it sets `handler`: an async function of the parsed args returning an exit code."""
    run = add_command(
        commands,
        "run",
        run_daemon,
        help="run the daemon (configured by ROTAUDIT_* variables and --config)",
        description="Run the daemon in the foreground until SIGTERM or SIGINT: consume the event queue, remediate, "
        "scan and sync on their schedules, serve /metrics and /healthz. Logs go to stderr at ROTAUDIT_LOG_LEVEL "
        "(-v: info, -vv: debug, -q: errors only).",
        examples=(
            "ROTAUDIT_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/rotaudit-events \\",
            "  ROTAUDIT_AUDIT_TABLE=rotaudit-audit rotaudit run --region eu-west-1",
        ),
        exit_codes={1: "a loop of the daemon crashed (the orchestrator restarts it)"},
        formats=("text",),
    )
    run.add_argument("--config", type=Path, help="TOML file; environment variables override it")


async def run_daemon(args: argparse.Namespace) -> int:
    """Until SIGTERM/SIGINT; the daemon's exit code."""
    config = load_settings(args, required=("queue_url", "audit_table"))
    if args.verbose or args.quiet:  # the command line wins over ROTAUDIT_LOG_LEVEL
        config = dataclasses.replace(config, log_level=log_level(args))
    configure_logging(config.log_level, config.log_format, color=not no_color())
    return await Daemon(config).run()
