"""The `rotaudit` command: run the daemon, provision its resources, emit events, read history, run locally."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_STARTUP, AwsError, ConfigError, StartupError
from daemon.logs import configure_logging

# How to get `rotaudit local` where it is missing (the dev extra brings moto, which the emulator runs on).
LOCAL_HOW_TO = "run it from a checkout of the rotaudit repository, after `pip install -e '.[dev]'` (or `make run`)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rotaudit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rotaudit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon (configured by ROTAUDIT_* variables and --config)")
    run.add_argument("--config", type=Path, help="TOML file; environment variables override it")

    prov = commands.add_parser("provision", help="create the queue, DLQ, table, topic and rules; print them as JSON")
    prov.add_argument("--prefix", default="rotaudit", help="name prefix for every resource (default: rotaudit)")
    prov.add_argument("--config", type=Path)

    from daemon.emit import EVENT_NAMES, STEPS

    emit = commands.add_parser("emit", help="publish a real-shaped Secrets Manager event")
    emit.add_argument("event_name", choices=EVENT_NAMES, metavar="EVENT_NAME", help=", ".join(EVENT_NAMES))
    emit.add_argument("--secret", required=True, help="secret name or ARN")
    emit.add_argument("--step", choices=STEPS, help="failing step for *RotationFailed (default setSecret)")
    emit.add_argument("--rotation-id", help="rotation id (default: a new uuid)")
    emit.add_argument("--event-id", help="CloudTrail event id (default: a new uuid)")
    emit.add_argument("--account", help="account the event claims to come from (default: the secret's)")
    emit.add_argument("--times", type=int, default=1, help="deliver the same event this many times")
    emit.add_argument(
        "--via",
        choices=("eventbridge", "queue"),
        default="eventbridge",
        help="through EventBridge's default bus (default), or straight to ROTAUDIT_QUEUE_URL",
    )
    emit.add_argument("--config", type=Path)

    hist = commands.add_parser("history", help="a secret's audit items, newest first")
    hist.add_argument("secret", help="secret name or ARN")
    hist.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    hist.add_argument("--limit", type=int, default=100)
    hist.add_argument("--table", help="audit table (default: ROTAUDIT_AUDIT_TABLE)")
    hist.add_argument("--config", type=Path)

    # `local` runs the dev tools (daemon/devtools/: the emulator), which only a checkout has: the wheel and the image
    # leave them out. This guarded import is the only import of daemon.devtools outside it. Without them, `local`
    # only says how to get them, and exits EXIT_FAILURE (1, as local.py does without moto; not a settings problem).
    try:
        from daemon.devtools.local import run_local
    except ModuleNotFoundError as exc:
        if exc.name != "daemon.devtools":  # a broken checkout must not pass for a product install
            raise
        local = commands.add_parser("local", help=f"not in this install: {LOCAL_HOW_TO}")
        local.set_defaults(run_local=None)
    else:
        local = commands.add_parser("local", help="emulator + demo data + the daemon in the foreground (make run)")
        local.set_defaults(run_local=run_local)
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=4566, help="emulator port (default 4566)")
    local.add_argument("--http-port", type=int, default=9108, help="daemon metrics/health port (default 9108)")

    from daemon.cli import dlq as cli_dlq
    from daemon.cli import scan as cli_scan
    from daemon.cli import sync as cli_sync

    for feature in (cli_scan, cli_dlq, cli_sync):
        feature.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "local":
            if args.run_local is None:
                print(f"rotaudit local: the dev tools are not installed: {LOCAL_HOW_TO}", file=sys.stderr)
                return EXIT_FAILURE
            return int(asyncio.run(args.run_local(args.host, args.port, args.http_port)))
        configure_logging("warning", "auto")
        handler = getattr(args, "handler", None) or _COMMANDS[args.command]
        return int(asyncio.run(handler(args)))
    except ConfigError as exc:
        print("rotaudit: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"rotaudit: start-up failed: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except AwsError as exc:
        print(f"rotaudit: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from daemon.app import Daemon
    from daemon.config import load_config

    config = load_config(toml_path=args.config)
    configure_logging(config.log_level, config.log_format)
    return asyncio.run(Daemon(config).run())


def _aws(config: Any, services: tuple[str, ...]) -> Any:
    from daemon.aws import Aws

    return Aws(config.aws_region, endpoint_url=config.aws_endpoint_url, services=services)


async def _provision(args: argparse.Namespace) -> int:
    from daemon.config import load_config
    from daemon.provision import provision

    config = load_config(toml_path=args.config, required=())
    async with _aws(config, ("sqs", "dynamodb", "sns", "events", "sts")) as aws:
        print(json.dumps(await provision(aws, args.prefix), indent=2))
    return 0


async def _emit(args: argparse.Namespace) -> int:
    from daemon.config import load_config
    from daemon.emit import build_event, publish, resolve_secret_arn, summary

    required = ("queue_url",) if args.via == "queue" else ()
    config = load_config(toml_path=args.config, required=required)
    async with _aws(config, ("sqs", "events", "secretsmanager", "sts")) as aws:
        arn = await resolve_secret_arn(aws, args.secret)
        envelope = build_event(
            args.event_name,
            arn,
            rotation_id=args.rotation_id,
            event_id=args.event_id,
            step=args.step,
            account=args.account,
        )
        for _ in range(max(1, args.times)):
            await publish(aws, envelope, via=args.via, queue_url=config.queue_url)
    print(json.dumps({**summary(envelope), "via": args.via, "times": max(1, args.times)}))
    return 0


async def _history(args: argparse.Namespace) -> int:
    from daemon.audit import AuditStore
    from daemon.config import load_config

    config = load_config(toml_path=args.config, required=() if args.table else ("audit_table",))
    async with _aws(config, ("dynamodb",)) as aws:
        items = await AuditStore(aws, args.table or config.audit_table).history(args.secret, limit=args.limit)
    if args.json:
        print(json.dumps(items, default=_json_default, indent=2))
        return 0
    if not items:
        print(f"no audit items for {args.secret}")
        return 0
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
    header = ("TIME", "KIND", "EVENT", "ROTATION", "STEP")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value).__name__)


_COMMANDS = {"provision": _provision, "emit": _emit, "history": _history}
