"""What every command shares: its parser (global options, formats, help), settings and AWS, and errors as exit codes.

A command module's `register(commands)` adds its commands with `add_command` (and daemon/cli/__init__.py lists the
module among its groups); nothing else is needed for the global options. The API, for a new command:

    cmd = add_command(
        commands, "evidence", evidence,          # the subparsers action, the name, the async handler
        help="one line for `rotaudit --help`",
        description="a paragraph for `rotaudit evidence --help`",
        examples=("rotaudit evidence --output html > evidence.html",),
        exit_codes={EXIT_FINDINGS: "..."},        # the command's own codes, beside the common ones
        formats=("csv", "json", "html"),          # what `--output` accepts; the first is the default
    )
    cmd.add_argument("--since", ...)             # the command's own options, as usual

    async def evidence(args: argparse.Namespace) -> int:
        config = load_settings(args, required=("audit_table",))   # ROTAUDIT_* and --config, with the AWS options
        async with open_aws(config, ("dynamodb",)) as aws:
            with missing_table_named(config, table):     # DynamoDB's not-found said as what to do, exit 3
                ...
        if args.output == "json": print_json(...)               # daemon.cli.output
        say(args, "12 rows")                                    # to stderr, unless -q
        return EXIT_OK

Every command then takes, before or after its name (`rotaudit --region x history S` = `rotaudit history S
--region x`; given in both places, the later wins): `--region`, `--profile`, `--endpoint-url` (the AWS CLI's
names and meanings: region from --region, then AWS_REGION / AWS_DEFAULT_REGION, then the profile's region),
`--output FORMAT` (checked against the command's `formats` after parsing: a bad one exits 2), `-v/--verbose`
(repeat for more) and `-q/--quiet`. The options carry `argparse.SUPPRESS` defaults, so a subparser never resets
what the top-level parser read; `finish_parsing` fills in the defaults once. `add_json_alias` keeps an old `--json`
flag working as a deprecated `--output json`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon.aws import Aws, explain, explains
from daemon.config import AwsOptions, Config, load_config
from daemon.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_FORCED,
    EXIT_OK,
    EXIT_STARTUP,
    EXIT_USAGE,
    AwsError,
    ConfigError,
    PermanentAwsError,
    StartupError,
)
from daemon.metrics import Metrics

# What each command's parser sets as `handler`: an async function of the parsed args returning an exit code.
Handler = Callable[[argparse.Namespace], Awaitable[int]]

DEFAULT_FORMATS = ("text", "json")
# The codes every command may end with; a command adds its own through `add_command(exit_codes=...)`.
COMMON_EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "an AWS call failed (the message names the missing permission when that is the cause)",
    EXIT_USAGE: "bad command line (unknown option, bad number, --output the command does not offer)",
    EXIT_STARTUP: "a resource is missing or not ready (table, queue): the message says what to create or set",
    EXIT_CONFIG: "bad settings (ROTAUDIT_*, --config, --region, --profile): one line per problem",
    EXIT_FORCED: "interrupted (Ctrl-C)",
}
_DEFAULTS = {"region": "", "profile": "", "endpoint_url": "", "verbose": 0, "quiet": 0, "deprecated_json": False}


def global_options(*, top: bool = False) -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser (`add_help=False`), every default SUPPRESS.

    `top`: for the top-level parser, whose -v/-q counts are kept apart from the command's and added up after.
    """
    options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    aws = options.add_argument_group("global options (before or after the command)")
    aws.add_argument("--region", metavar="REGION", help="AWS region (default: AWS_REGION, then the profile's)")
    aws.add_argument("--profile", metavar="NAME", help="a profile of the AWS config files (default: AWS_PROFILE)")
    aws.add_argument(
        "--endpoint-url", metavar="URL", help="send AWS calls here (default: AWS_ENDPOINT_URL), e.g. a local emulator"
    )
    if top:
        aws.add_argument("--output", metavar="FORMAT", help="text or json (some commands offer other formats)")
    suffix = "_before" if top else ""
    aws.add_argument(
        "-v", "--verbose", action="count", dest=f"verbose{suffix}", help="more log detail on stderr (-vv: debug)"
    )
    aws.add_argument(
        "-q", "--quiet", action="count", dest=f"quiet{suffix}", help="print only results and errors (no progress)"
    )
    return options


def add_command(
    commands: Any,
    name: str,
    handler: Handler | None,
    *,
    help: str,
    description: str = "",
    examples: Sequence[str] = (),
    exit_codes: Mapping[int, str] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> argparse.ArgumentParser:
    """A command's parser with the global options, `--output {formats}` and an epilog of examples and exit codes.

    `handler` None is a group of subcommands (`dlq`), whose own commands are added with `add_command` in turn.
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=_epilog(examples, exit_codes) if handler is not None else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options()],
    )
    if handler is not None:
        parser.add_argument(
            "--output",
            choices=tuple(formats),
            default=argparse.SUPPRESS,
            help=f"{' or '.join(formats)} (default {formats[0]}); the README's CLI section documents the JSON shape",
        )
        parser.set_defaults(handler=handler, formats=tuple(formats))
    return parser


def add_json_alias(parser: argparse.ArgumentParser) -> None:
    """Keep an old `--json` flag: the same as `--output json`, with a deprecation note on stderr."""
    parser.add_argument(
        "--json", action=_JsonAlias, nargs=0, default=argparse.SUPPRESS, help="deprecated: --output json"
    )


class _JsonAlias(argparse.Action):
    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: str | None = None
    ) -> None:
        namespace.output = "json"
        namespace.deprecated_json = True


def finish_parsing(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Fill in the global options' defaults once, add up -v/-q given before and after, check `--output`."""
    for key, value in _DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    args.verbose += getattr(args, "verbose_before", 0)
    args.quiet += getattr(args, "quiet_before", 0)
    formats: tuple[str, ...] = getattr(args, "formats", DEFAULT_FORMATS)
    if not hasattr(args, "output"):
        args.output = formats[0]
    elif args.output not in formats:
        parser.error(
            f"argument --output: invalid choice for {command_name(args)}: {args.output!r} "
            f"(choose from {', '.join(formats)})"
        )
    if args.deprecated_json:
        say(args, f"{command_name(args)}: --json is deprecated: use --output json")
    return args


def log_level(args: argparse.Namespace, default: str = "warning") -> str:
    """The log level -v/-q ask for: -q error, -v info, -vv debug; else `default`."""
    if args.quiet:
        return "error"
    return {0: default, 1: "info"}.get(args.verbose, "debug")


def say(args: argparse.Namespace, line: str) -> None:
    """A line for the person at the terminal (progress, counts, notes) on stderr; -q silences it."""
    if not getattr(args, "quiet", 0):
        print(line, file=sys.stderr)


def load_settings(args: argparse.Namespace, *, required: Sequence[str] = ()) -> Config:
    """The settings (ROTAUDIT_* over `--config`), with the command line's --region, --profile and --endpoint-url."""
    config_path: Path | None = getattr(args, "config", None)
    options = AwsOptions(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    return load_config(toml_path=config_path, required=required, aws=options)


def open_aws(config: Config, services: tuple[str, ...], *, metrics: Metrics | None = None) -> Aws:
    """The command's AWS clients, to open with `async with`: the configured region, endpoint and retry budget."""
    return Aws(
        config.aws_region,
        endpoint_url=config.aws_endpoint_url,
        metrics=metrics,
        max_attempts=config.aws_max_attempts,
        services=services,
        profile=config.aws_profile,
    )


@contextmanager
def missing_table_named(config: Config, table: str) -> Iterator[None]:
    """Turn DynamoDB's bare ResourceNotFoundException on the audit table into what to do about it (exit 3)."""
    try:
        yield
    except PermanentAwsError as exc:
        if exc.service != "dynamodb" or exc.code != "ResourceNotFoundException":
            raise
        where = f" at {config.aws_endpoint_url}" if config.aws_endpoint_url else ""
        raise StartupError(
            f"audit table {table!r} not found in {config.aws_region}{where}: create it with `rotaudit provision` "
            "or `terraform apply`, or name the right one with --table (or ROTAUDIT_AUDIT_TABLE) and --region"
        ) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (so `--limit -5` and `--limit 0` exit 2)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def command_name(args: argparse.Namespace) -> str:
    """`rotaudit dlq replay`, `rotaudit history`, ...: how error lines name the command."""
    words = ["rotaudit", getattr(args, "command", None), getattr(args, "dlq_command", None)]
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
        fix = "check the name, --region (or AWS_REGION) and --endpoint-url"
        said = explain(error, f"{error.service}.{error.operation}", fix) if explains(error) else str(error)
        print(f"{command}: {said}", file=sys.stderr)
        return EXIT_FAILURE
    if isinstance(error, KeyboardInterrupt):
        return EXIT_FORCED
    raise error


def _epilog(examples: Sequence[str], exit_codes: Mapping[int, str] | None) -> str:
    codes = {**COMMON_EXIT_CODES, **(exit_codes or {})}
    lines = ["examples:", *(f"  {example}" for example in examples), "", "exit codes:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in sorted(codes.items())]
    return "\n".join(lines)
