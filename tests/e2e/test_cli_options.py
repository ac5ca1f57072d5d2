"""The CLI's global options (the AWS CLI's names and meanings) and its exit codes, as subprocesses on the emulator.

The environment carries credentials only: every test says where AWS is (region, endpoint) through the option, the
variable or the profile it is about, so a test passes only if that one is honoured.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from daemon.table import table_definition
from tests.support import FAKE_CREDENTIALS, REGION, ROOT, rotaudit_cmd
from tests.support.scan import client, isolated_region

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def run(*args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """`rotaudit ARGS` with test credentials, no region, no endpoint, empty AWS config files, plus `env_extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env |= FAKE_CREDENTIALS | {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env |= env_extra
    return subprocess.run(rotaudit_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def make_table(endpoint: str, region: str) -> str:
    """An empty audit table, as provisioned, in `region` only."""
    name = f"opt{uuid.uuid4().hex[:10]}-audit"
    ddb = client("dynamodb", endpoint, region)
    ddb.create_table(**table_definition(name))
    ddb.get_waiter("table_exists").wait(TableName=name)
    return name


@pytest.fixture
def aws_config(tmp_path: Path) -> Path:
    """An AWS config file with a profile `audit` whose region is one no other test uses."""
    path = tmp_path / "config"
    # A named profile ignores the environment's keys (botocore, as the AWS CLI): this one carries its own.
    keys = "\n".join(f"{name.lower()} = {value}" for name, value in FAKE_CREDENTIALS.items())
    path.write_text(f"[profile audit]\nregion = {isolated_region()}\n{keys}\n")
    return path


def profile_region(path: Path) -> str:
    return path.read_text().split("region = ")[1].split()[0]


def test_global_options_work_before_and_after_the_command(endpoint: str) -> None:
    """`rotaudit --region R --endpoint-url E history S` and `rotaudit history S --region R --endpoint-url E` agree."""
    region = isolated_region()
    table = make_table(endpoint, region)
    where = ("--region", region, "--endpoint-url", endpoint)

    before = run(*where, "--output", "json", "history", "app/db", "--table", table)
    after = run("history", "app/db", "--table", table, *where, "--output", "json")

    assert (before.returncode, after.returncode) == (0, 0), before.stderr + after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout) == {"secret": "app/db", "table": table, "items": []}


def test_options_win_over_the_environment(endpoint: str) -> None:
    """--region beats AWS_REGION and --endpoint-url beats AWS_ENDPOINT_URL; given twice, the later one wins."""
    region = isolated_region()
    table = make_table(endpoint, region)
    env = {"AWS_REGION": REGION, "AWS_ENDPOINT_URL": UNREACHABLE}

    flags = run("history", "x", "--table", table, "--region", region, "--endpoint-url", endpoint, **env)
    later = run("--region", REGION, "history", "x", "--table", table, "--region", region, "--endpoint-url", endpoint)
    from_env = run("history", "x", "--table", table, AWS_REGION=region, AWS_ENDPOINT_URL=endpoint)

    assert (flags.returncode, later.returncode, from_env.returncode) == (0, 0, 0), flags.stderr + later.stderr


def test_a_profiles_region_is_honoured(endpoint: str, aws_config: Path) -> None:
    """--profile (or AWS_PROFILE) supplies the region when neither --region nor AWS_REGION does, as in the AWS CLI."""
    table = make_table(endpoint, profile_region(aws_config))
    config = {"AWS_CONFIG_FILE": str(aws_config), "AWS_ENDPOINT_URL": endpoint}

    flag = run("history", "x", "--table", table, "--profile", "audit", **config)
    env = run("history", "x", "--table", table, AWS_PROFILE="audit", **config)
    # AWS_REGION comes before the profile's region: the table is not in us-east-1.
    overridden = run("history", "x", "--table", table, "--profile", "audit", AWS_REGION=REGION, **config)
    no_region = run("history", "x", "--table", table, **config)

    assert (flag.returncode, env.returncode) == (0, 0), flag.stderr + env.stderr
    assert overridden.returncode == 3, overridden.stderr
    assert REGION in overridden.stderr
    assert no_region.returncode == 78
    assert "AWS_REGION" in no_region.stderr


def test_an_unknown_profile_is_a_config_error(endpoint: str, aws_config: Path) -> None:
    """A profile the config files lack exits 78 naming --profile, before any AWS call."""
    result = run(
        "history", "x", "--table", "t", "--profile", "nope", "--region", REGION, AWS_CONFIG_FILE=str(aws_config)
    )

    assert result.returncode == 78
    assert "--profile" in result.stderr
    assert "'nope'" in result.stderr


def test_a_profile_without_credentials_says_how_to_give_them(endpoint: str, tmp_path: Path) -> None:
    """A named profile without keys (the environment's do not count then) exits 1 saying where credentials go."""
    config = tmp_path / "config"
    config.write_text(f"[profile bare]\nregion = {REGION}\n")

    result = run(
        "history", "x", "--table", "t", "--profile", "bare", "--endpoint-url", endpoint, AWS_CONFIG_FILE=str(config)
    )

    assert result.returncode == 1
    assert "NoCredentialsError" in result.stderr
    assert "--profile" in result.stderr


def test_a_bad_region_flag_names_the_flag() -> None:
    """--region that is no region name exits 78 naming --region."""
    result = run("history", "x", "--table", "t", "--region", "mars-1")

    assert result.returncode == 78
    assert "--region" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("history", "app/db", "--limit", "-5"),
        ("history", "app/db", "--limit", "0"),
        ("history", "app/db", "--limit", "many"),
        ("emit", "RotationFailed", "--secret", "s", "--times", "0"),
        ("dlq", "inspect", "--limit", "-1"),
        ("history", "app/db", "--output", "csv"),
        ("--output", "csv", "history", "app/db"),  # checked against the command's formats after parsing
        ("run", "--output", "json"),  # the daemon has no JSON output
        ("report", "--fail-on", "ok"),
    ],
)
def test_bad_command_lines_exit_2(args: tuple[str, ...]) -> None:
    """Bad numbers, formats and choices are usage errors (exit 2) before anything runs, never "no items"."""
    result = run(*args, AWS_REGION=REGION, AWS_ENDPOINT_URL=UNREACHABLE)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "usage: rotaudit" in result.stderr


def test_quiet_keeps_stderr_for_errors(endpoint: str) -> None:
    """-q prints results and errors only: a missing table still says what to do on stderr."""
    result = run("-q", "history", "x", "--table", "missing", "--region", REGION, "--endpoint-url", endpoint)

    assert result.returncode == 3
    assert "missing" in result.stderr
