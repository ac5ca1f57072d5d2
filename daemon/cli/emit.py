"""`rotaudit emit`: publish a real-shaped Secrets Manager event, through EventBridge or straight to the queue."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from daemon.cli.common import open_aws
from daemon.config import load_config
from daemon.emit import EVENT_NAMES, STEPS, build_event, publish, resolve_secret_arn, summary
from daemon.errors import EXIT_OK


def register(commands: Any) -> None:
    """Add `emit`; it sets `handler`: an async function of the parsed args returning an exit code."""
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
    emit.set_defaults(handler=emit_event)


async def emit_event(args: argparse.Namespace) -> int:
    required = ("queue_url",) if args.via == "queue" else ()
    config = load_config(toml_path=args.config, required=required)
    async with open_aws(config, ("sqs", "events", "secretsmanager", "sts")) as aws:
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
    return EXIT_OK
