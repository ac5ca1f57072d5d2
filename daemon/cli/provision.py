"""`rotaudit provision`: create (idempotently) the queue, DLQ, table, topic and rules; print what it made."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.cli.common import add_command, load_settings, open_aws
from daemon.cli.output import print_json, print_table
from daemon.errors import EXIT_OK
from daemon.provision import provision


def register(commands: Any) -> None:
    """Add `provision`; it sets `handler`: an async function of the parsed args returning an exit code."""
    prov = add_command(
        commands,
        "provision",
        provision_resources,
        help="create the queue, DLQ, table, topic and rules (idempotent)",
        description="Create, or find as they are, the event queue and its DLQ, the audit table, the SNS topic and "
        "the EventBridge rules, all named PREFIX-*; print their names, URLs and ARNs (the keys Terraform outputs).\n"
        "--output json: one object, {queue_url, dlq_url, table_name, topic_arn, ...}.",
        examples=(
            "rotaudit provision --prefix rotaudit --region eu-west-1",
            "rotaudit provision --output json | jq -r .queue_url",
        ),
    )
    prov.add_argument("--prefix", default="rotaudit", help="name prefix for every resource (default: rotaudit)")
    prov.add_argument("--config", type=Path, help="TOML file; environment variables override it")


async def provision_resources(args: argparse.Namespace) -> int:
    config = load_settings(args)
    async with open_aws(config, ("sqs", "dynamodb", "sns", "events", "sts")) as aws:
        made = await provision(aws, args.prefix)
    if args.output == "json":
        print_json(made)
    else:
        print_table(("RESOURCE", "VALUE"), sorted((key, str(value)) for key, value in made.items()))
    return EXIT_OK
