"""`rotaudit run`: the daemon in the foreground, configured by ROTAUDIT_* variables and an optional TOML file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.app import Daemon
from daemon.config import load_config
from daemon.logs import configure_logging


def register(commands: Any) -> None:
    """Add `run`; it sets `handler`: an async function of the parsed args returning an exit code."""
    run = commands.add_parser("run", help="run the daemon (configured by ROTAUDIT_* variables and --config)")
    run.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    run.set_defaults(handler=run_daemon)


async def run_daemon(args: argparse.Namespace) -> int:
    """Until SIGTERM/SIGINT; the daemon's exit code."""
    config = load_config(toml_path=args.config)
    configure_logging(config.log_level, config.log_format)
    return await Daemon(config).run()
