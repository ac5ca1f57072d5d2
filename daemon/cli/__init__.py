"""The `rotaudit` command: run the daemon, provision its resources, emit events, read history, run locally."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.cli import dlq as cli_dlq
from daemon.cli import doctor as cli_doctor
from daemon.cli import emit as cli_emit
from daemon.cli import history as cli_history
from daemon.cli import provision as cli_provision
from daemon.cli import run as cli_run
from daemon.cli import scan as cli_scan
from daemon.cli import sync as cli_sync
from daemon.cli.common import add_command, command_name, exit_code, finish_parsing, global_options, log_level
from daemon.config import no_color
from daemon.errors import EXIT_FAILURE, RotauditError
from daemon.logs import configure_logging

# How to get `rotaudit local` where it is missing (the dev extra brings moto, which the emulator runs on).
LOCAL_HOW_TO = "run it from a checkout of the rotaudit repository, after `pip install -e '.[dev]'` (or `make run`)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotaudit",
        description=__doc__,
        epilog="Global options go before or after the command; `rotaudit COMMAND --help` shows its examples and "
        "exit codes.",
        parents=[global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"rotaudit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (cli_run, cli_provision, cli_emit, cli_history):
        group.register(commands)

    # `local` runs the dev tools (daemon/devtools/: the emulator), which only a checkout has: the wheel and the image
    # leave them out. This guarded import is the only import of daemon.devtools outside it. Without them, `local`
    # only says how to get them, and exits EXIT_FAILURE (1, as local.py does without moto; not a settings problem).
    try:
        from daemon.devtools.local import run_local
    except ModuleNotFoundError as exc:
        if exc.name != "daemon.devtools":  # a broken checkout must not pass for a product install
            raise
        local = add_command(commands, "local", _local, help=f"not in this install: {LOCAL_HOW_TO}", formats=("text",))
        local.set_defaults(run_local=None)
    else:
        local = add_command(
            commands,
            "local",
            _local,
            help="emulator + demo data + the daemon in the foreground (make run)",
            description="Start the emulator, provision the demo resources, seed demo secrets and events, then run the "
            "daemon in the foreground against them until Ctrl-C. --region, --profile and --endpoint-url do not "
            "apply: it runs its own emulator.",
            examples=("rotaudit local --port 4566 --http-port 9108",),
            formats=("text",),
        )
        local.set_defaults(run_local=run_local)
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=4566, help="emulator port (default 4566)")
    local.add_argument("--http-port", type=int, default=9108, help="daemon metrics/health port (default 9108)")

    for group in (cli_scan, cli_dlq, cli_sync, cli_doctor):
        group.register(commands)
    return parser


async def _local(args: argparse.Namespace) -> int:
    """`rotaudit local`: the dev tools' run, or how to get them."""
    if args.run_local is None:
        print(f"rotaudit local: the dev tools are not installed: {LOCAL_HOW_TO}", file=sys.stderr)
        return EXIT_FAILURE
    return int(await args.run_local(args.host, args.port, args.http_port))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (rotaudit's errors mapped by `daemon.cli.common.exit_code`)."""
    parser = _parser()
    args = finish_parsing(parser, parser.parse_args(argv))
    try:
        # `run` and `local` set their own level and format from their settings; -v/-q still apply to `run`.
        configure_logging(log_level(args), "auto", color=not no_color())
        return int(asyncio.run(args.handler(args)))
    except (RotauditError, KeyboardInterrupt) as exc:
        return exit_code(command_name(args), exc)
