"""`rotaudit emit`: publish a real-shaped Secrets Manager event, through EventBridge or straight to the queue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.cli.common import add_command, load_settings, open_aws, positive_int
from daemon.cli.output import print_json
from daemon.emit import EVENT_NAMES, STEPS, build_event, publish, resolve_secret_arn, summary
from daemon.errors import EXIT_OK


def register(commands: Any) -> None:
    """Add `emit`; it sets `handler`: an async function of the parsed args returning an exit code."""
    emit = add_command(
        commands,
        "emit",
        emit_event,
        help="publish a real-shaped Secrets Manager event",
        description="Build the event AWS would send for EVENT_NAME on a secret and publish it, to drive the daemon "
        "without a real rotation.\n--output json: one object, "
        "{event_name, secret_arn, rotation_id, event_id, event_time, via, times}.",
        examples=(
            "rotaudit emit RotationFailed --secret app/db --step setSecret",
            "rotaudit emit RotationSucceeded --secret app/db --via queue --times 2 --output json",
        ),
    )
    emit.add_argument("event_name", choices=EVENT_NAMES, metavar="EVENT_NAME", help=", ".join(EVENT_NAMES))
    emit.add_argument("--secret", required=True, help="secret name or ARN")
    emit.add_argument("--step", choices=STEPS, help="failing step for *RotationFailed (default setSecret)")
    emit.add_argument("--rotation-id", help="rotation id (default: a new uuid)")
    emit.add_argument("--event-id", help="CloudTrail event id (default: a new uuid)")
    emit.add_argument("--account", help="account the event claims to come from (default: the secret's)")
    emit.add_argument("--times", type=positive_int, default=1, help="deliver the same event this many times")
    emit.add_argument(
        "--via",
        choices=("eventbridge", "queue"),
        default="eventbridge",
        help="through EventBridge's default bus (default), or straight to ROTAUDIT_QUEUE_URL",
    )
    emit.add_argument("--config", type=Path, help="TOML file; environment variables override it")


async def emit_event(args: argparse.Namespace) -> int:
    required = ("queue_url",) if args.via == "queue" else ()
    config = load_settings(args, required=required)
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
        for _ in range(args.times):
            await publish(aws, envelope, via=args.via, queue_url=config.queue_url)
    sent = {**summary(envelope), "via": args.via, "times": args.times}
    if args.output == "json":
        print_json(sent)
    else:
        times = f" {args.times} times" if args.times > 1 else ""
        print(f"{sent['event_name']} for {sent['secret_arn']} sent via {args.via}{times}")
        print(f"rotation id {sent['rotation_id']}, event id {sent['event_id']}, at {sent['event_time']}")
    return EXIT_OK
