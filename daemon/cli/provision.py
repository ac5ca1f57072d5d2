"""`rotaudit provision`: create (idempotently) the queue, DLQ, table, topic and rules; print them as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from daemon.cli.common import open_aws
from daemon.config import load_config
from daemon.errors import EXIT_OK
from daemon.provision import provision


def register(commands: Any) -> None:
    """Add `provision`; it sets `handler`: an async function of the parsed args returning an exit code."""
    prov = commands.add_parser("provision", help="create the queue, DLQ, table, topic and rules; print them as JSON")
    prov.add_argument("--prefix", default="rotaudit", help="name prefix for every resource (default: rotaudit)")
    prov.add_argument("--config", type=Path)
    prov.set_defaults(handler=provision_resources)


async def provision_resources(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=())
    async with open_aws(config, ("sqs", "dynamodb", "sns", "events", "sts")) as aws:
        print(json.dumps(await provision(aws, args.prefix), indent=2))
    return EXIT_OK
