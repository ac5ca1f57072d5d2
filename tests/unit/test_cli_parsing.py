"""The CLI's parsing, without AWS: global options anywhere, formats per command, help, region precedence, colour."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import structlog

from daemon.cli import _parser
from daemon.cli.common import finish_parsing, log_level
from daemon.cli.dlq import ProgressBar
from daemon.config import AwsOptions, dumb_terminal, load_config, no_color
from daemon.dlq.replay import ReplayCounts
from daemon.errors import ConfigError
from daemon.logs import configure_logging, get_logger

SETTINGS = {"ROTAUDIT_AUDIT_TABLE": "rotaudit-audit"}


def parse(*argv: str) -> argparse.Namespace:
    parser = _parser()
    return finish_parsing(parser, parser.parse_args(argv))


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every leaf command: (its words, its --help text)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*words, name))
    return found or [(words, parser.format_help())]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("history", "s"), ("", "", "", "text", 0, 0)),
        (("--region", "eu-west-1", "history", "s"), ("eu-west-1", "", "", "text", 0, 0)),
        (("history", "s", "--region", "eu-west-1", "--profile", "p"), ("eu-west-1", "p", "", "text", 0, 0)),
        (("--endpoint-url", "http://e", "dlq", "inspect", "-q"), ("", "", "http://e", "text", 0, 1)),
        (("--region", "us-east-1", "report", "--region", "eu-west-1"), ("eu-west-1", "", "", "text", 0, 0)),
        (("-v", "report", "-v", "--output", "json"), ("", "", "", "json", 2, 0)),
        (("--output", "json", "scan"), ("", "", "", "json", 0, 0)),
        (("report", "--json"), ("", "", "", "json", 0, 0)),
        (("dlq", "replay", "--json", "--table", "t"), ("", "", "", "json", 0, 0)),
    ],
)
def test_global_options_parse_before_or_after_the_command(argv: tuple[str, ...], expected: tuple[object, ...]) -> None:
    """Options given before the command survive the subparser; after it they count too; the later one wins."""
    args = parse(*argv)
    assert (args.region, args.profile, args.endpoint_url, args.output, args.verbose, args.quiet) == expected


def test_every_command_takes_the_global_options_and_shows_examples_and_exit_codes() -> None:
    """Each command's --help names the global options, at least one example and the exit codes 0, 2 and 78."""
    commands = _commands(_parser())
    assert {words for words, _ in commands} >= {("scan",), ("report",), ("history",), ("dlq", "replay"), ("sync",)}
    for words, text in commands:
        for option in ("--region", "--profile", "--endpoint-url", "--output", "--verbose", "--quiet"):
            assert option in text, (words, option)
        examples = text.split("examples:\n")[1].split("\n\n")[0]
        assert f"rotaudit {' '.join(words)}" in examples, words
        codes = [line.split()[0] for line in text.split("exit codes:\n")[1].splitlines() if line.strip()]
        assert {"0", "2", "78"} <= set(codes), words


@pytest.mark.parametrize(
    ("verbose", "quiet", "level"), [(0, 0, "warning"), (1, 0, "info"), (3, 0, "debug"), (2, 1, "error")]
)
def test_verbosity_maps_to_a_log_level(verbose: int, quiet: int, level: str) -> None:
    """-v info, -vv debug, -q errors only (and wins)."""
    assert log_level(argparse.Namespace(verbose=verbose, quiet=quiet)) == level


@pytest.mark.parametrize(
    ("env", "options", "region"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}, AwsOptions(), "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "eu-west-2"}, AwsOptions(profile="audit"), "eu-west-2"),
        ({"AWS_REGION": "eu-west-1"}, AwsOptions(region="ap-south-1", profile="audit"), "ap-south-1"),
        ({}, AwsOptions(profile="audit"), "ca-central-1"),
        ({"AWS_PROFILE": "audit"}, AwsOptions(), "ca-central-1"),
    ],
)
def test_region_precedence_is_the_aws_clis(
    env: dict[str, str], options: AwsOptions, region: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--region, then AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region."""
    config_file = tmp_path / "config"
    config_file.write_text("[profile audit]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)

    config = load_config({**SETTINGS, **env}, required=(), aws=options)

    assert config.aws_region == region


def test_the_profile_region_is_only_read_for_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `aws` options (the daemon's own callers, tests), AWS_REGION stays required as before."""
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    with pytest.raises(ConfigError) as raised:
        load_config(SETTINGS, required=())
    assert raised.value.problems == ["AWS_REGION: required (or AWS_DEFAULT_REGION)"]
    assert load_config(SETTINGS, required=(), aws=AwsOptions()).aws_region == "ca-central-1"


def test_bad_aws_options_are_named_with_everything_else() -> None:
    """A bad --region and --endpoint-url are named by their flags, alongside the other settings' problems."""
    with pytest.raises(ConfigError) as raised:
        load_config({"ROTAUDIT_HTTP_PORT": "x"}, required=(), aws=AwsOptions(region="mars", endpoint_url="ftp:x"))
    named = [problem.split(":")[0] for problem in raised.value.problems]
    assert sorted(named) == ["--endpoint-url", "--region", "ROTAUDIT_HTTP_PORT"]


@pytest.mark.parametrize(
    ("env", "colourless", "dumb"),
    [
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, False, False),
        ({"TERM": "dumb"}, False, True),
    ],
)
def test_no_color_and_dumb_terminals_are_read_from_the_environment(
    env: dict[str, str], colourless: bool, dumb: bool
) -> None:
    """NO_COLOR set and not empty means no colour (no-color.org); TERM=dumb means no redrawn progress bar."""
    assert (no_color(env), dumb_terminal(env)) == (colourless, dumb)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("color", [True, False])
def test_console_logs_are_coloured_only_when_allowed(color: bool) -> None:
    """On a terminal the console renderer colours its lines, unless told not to (NO_COLOR)."""
    stream, saved = _Terminal(), structlog.get_config()
    try:
        configure_logging("info", "console", stream, color=color)
        get_logger("test").info("cli.coloured")
    finally:
        structlog.configure(**saved)
    assert ("\x1b[" in stream.getvalue()) is color


def test_the_progress_bar_stays_off_when_disabled() -> None:
    """-q (or TERM=dumb) turns the bar off even on a terminal."""
    stream = _Terminal()
    bar = ProgressBar(stream, total=4, enabled=False)
    bar.update(ReplayCounts(matched=1))
    bar.close()
    assert stream.getvalue() == ""
