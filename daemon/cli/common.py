"""What every command shares: AWS opened from the settings, and rotaudit's errors turned into exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from daemon.aws import Aws, explain
from daemon.config import Config
from daemon.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_FORCED,
    EXIT_STARTUP,
    AwsError,
    ConfigError,
    StartupError,
)
from daemon.metrics import Metrics

# What each command's parser sets as `handler`: an async function of the parsed args returning an exit code.
Handler = Callable[[argparse.Namespace], Awaitable[int]]


def open_aws(config: Config, services: tuple[str, ...], *, metrics: Metrics | None = None) -> Aws:
    """The command's AWS clients, to open with `async with`: the configured region, endpoint and retry budget."""
    return Aws(
        config.aws_region,
        endpoint_url=config.aws_endpoint_url,
        metrics=metrics,
        max_attempts=config.aws_max_attempts,
        services=services,
    )


def command_name(args: argparse.Namespace) -> str:
    """`rotaudit dlq replay`, `rotaudit history`, ...: how error lines name the command."""
    words = ["rotaudit", args.command, getattr(args, "dlq_command", None)]
    return " ".join(word for word in words if word)


def exit_code(command: str, error: BaseException) -> int:
    """The exit code for an error a command ended with, said on stderr as what to fix; anything else re-raised.

    Bad settings exit 78 with a line per problem, unreachable or unready resources 3, a failed AWS call 1
    (naming the missing permission when that is the cause), Ctrl-C 130.
    """
    if isinstance(error, ConfigError):
        print(f"{command}: invalid configuration:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if isinstance(error, StartupError):
        print(f"{command}: {error}", file=sys.stderr)
        return EXIT_STARTUP
    if isinstance(error, AwsError):
        print(f"{command}: {explain(error, f'{error.service}.{error.operation}')}", file=sys.stderr)
        return EXIT_FAILURE
    if isinstance(error, KeyboardInterrupt):
        return EXIT_FORCED
    raise error
