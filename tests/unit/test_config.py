"""Configuration: environment over TOML, every bad field named at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.errors import ConfigError
from tests.support import ROOT

GOOD = {
    "AWS_REGION": "eu-west-1",
    "ROTAUDIT_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/rotation-events",
    "ROTAUDIT_AUDIT_TABLE": "rotaudit-audit",
}


def test_defaults_apply_when_only_required_settings_are_given() -> None:
    """A minimal environment yields the documented defaults."""
    config = load_config(GOOD)
    assert config.http_port == 9108
    assert config.consumer_concurrency == 4
    assert config.drain_timeout_s == 20.0
    assert config.allowed_accounts == frozenset()
    assert config.aws_region == "eu-west-1"
    assert (config.remediation_retry_base_s, config.remediation_poll_s) == (60.0, 15.0)
    assert config.securityhub is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["ROTAUDIT_QUEUE_URL: required", "ROTAUDIT_AUDIT_TABLE: required", "AWS_REGION: required"]),
        ({**GOOD, "ROTAUDIT_HTTP_PORT": "http"}, ["ROTAUDIT_HTTP_PORT"]),
        ({**GOOD, "ROTAUDIT_HTTP_PORT": "70000"}, ["ROTAUDIT_HTTP_PORT"]),
        ({**GOOD, "ROTAUDIT_ALLOWED_ACCOUNTS": "123456789012,12345"}, ["ROTAUDIT_ALLOWED_ACCOUNTS: 12345"]),
        ({**GOOD, "ROTAUDIT_QUEUE_URL": "not a url"}, ["ROTAUDIT_QUEUE_URL"]),
        ({**GOOD, "ROTAUDIT_DLQ_URL": "ftp://x"}, ["ROTAUDIT_DLQ_URL"]),
        ({**GOOD, "ROTAUDIT_AUDIT_TABLE": "a b"}, ["ROTAUDIT_AUDIT_TABLE"]),
        ({**GOOD, "ROTAUDIT_CONSUMER_CONCURRENCY": "0"}, ["ROTAUDIT_CONSUMER_CONCURRENCY"]),
        ({**GOOD, "ROTAUDIT_DRAIN_TIMEOUT_S": "90"}, ["ROTAUDIT_DRAIN_TIMEOUT_S: must be below"]),
        ({**GOOD, "ROTAUDIT_LOG_FORMAT": "xml"}, ["ROTAUDIT_LOG_FORMAT"]),
        ({**GOOD, "AWS_REGION": "mars"}, ["AWS_REGION"]),
        ({**GOOD, "ROTAUDIT_REMEDIATION_RETRY_BASE_S": "0.5"}, ["ROTAUDIT_REMEDIATION_RETRY_BASE_S"]),
        ({**GOOD, "ROTAUDIT_REMEDIATION_POLL_S": "0"}, ["ROTAUDIT_REMEDIATION_POLL_S"]),
    ],
    ids=[
        "nothing",
        "port-not-number",
        "port-range",
        "bad-account",
        "queue-url",
        "dlq-url",
        "table-name",
        "concurrency",
        "drain-above-visibility",
        "log-format",
        "region",
        "retry-base",
        "remediation-poll",
    ],
)
def test_bad_settings_are_named(env: dict[str, str], expected: list[str]) -> None:
    """Each bad setting appears in the error by its variable name."""
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    joined = "\n".join(caught.value.problems)
    for fragment in expected:
        assert fragment in joined


def test_every_bad_field_is_reported_at_once() -> None:
    """Three bad fields give three problems, not one."""
    env = {**GOOD, "ROTAUDIT_HTTP_PORT": "x", "ROTAUDIT_WAIT_TIME_S": "99", "ROTAUDIT_LOG_LEVEL": "loud"}
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert len(caught.value.problems) == 3


def test_environment_overrides_toml(tmp_path: Path) -> None:
    """A TOML file supplies settings; the environment wins where both set one."""
    path = tmp_path / "rotaudit.toml"
    path.write_text('[rotaudit]\nhttp_port = 9200\nconsumer_concurrency = 8\naudit_table = "from-toml"\n')
    config = load_config({**GOOD, "ROTAUDIT_HTTP_PORT": "9300"}, path)
    assert config.http_port == 9300
    assert config.consumer_concurrency == 8
    assert config.audit_table == "rotaudit-audit"


def test_unknown_toml_keys_are_errors(tmp_path: Path) -> None:
    """A typo in the file is reported rather than silently ignored."""
    path = tmp_path / "rotaudit.toml"
    path.write_text("[rotaudit]\nhttp_prot = 9200\n")
    with pytest.raises(ConfigError) as caught:
        load_config(GOOD, path)
    assert any("http_prot" in problem for problem in caught.value.problems)


def test_example_config_files_load() -> None:
    """The example files shipped in config/ are valid."""
    for path in sorted(ROOT.joinpath("config").glob("*.toml")):
        load_config({"AWS_REGION": "us-east-1"}, path)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROTAUDIT_SCAN_SCHEDULE", "every hour"),
        ("ROTAUDIT_SCAN_SCHEDULE", "rate(1 hours)"),
        ("ROTAUDIT_SCAN_SCHEDULE", "rate(0 minutes)"),
        ("ROTAUDIT_SCAN_TAG", "Managed"),
        ("ROTAUDIT_REMEDIATION_MODE", "yolo"),
        ("ROTAUDIT_SNS_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
        ("ROTAUDIT_SYNC_PAIRS", "{not json"),
        ("ROTAUDIT_SYNC_PAIRS", '[{"name": "a", "source": "s"}]'),
        ("ROTAUDIT_SYNC_PAIRS", '[{"name": "a", "source": "s", "target": "t", "colour": "red"}]'),
        ("ROTAUDIT_SYNC_PAIRS", '[{"name": "a", "source": "s", "target": "t", "port": "x"}]'),
        ("ROTAUDIT_SCAN_TARGETS", '[{"role_arn": "nope"}]'),
        ("ROTAUDIT_SCAN_ENABLED", "maybe"),
        ("ROTAUDIT_SECURITYHUB", "sometimes"),
    ],
)
def test_feature_settings_are_validated(name: str, value: str) -> None:
    """Schedules, tags, modes, ARNs and JSON lists are checked at start-up and named when wrong."""
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, name: value})
    assert any(problem.startswith(name) for problem in caught.value.problems)


def test_sync_pairs_and_scan_targets_parse_from_json() -> None:
    """ROTAUDIT_SYNC_PAIRS and ROTAUDIT_SCAN_TARGETS become typed values."""
    pairs = '[{"name": "app", "source": "rds!db-1", "target": "app/url", "port": 5432, "ecs_services": ["c/s"]}]'
    targets = '[{"role_arn": "arn:aws:iam::123456789012:role/audit", "regions": ["eu-west-1"]}]'
    config = load_config({**GOOD, "ROTAUDIT_SYNC_PAIRS": pairs, "ROTAUDIT_SCAN_TARGETS": targets})
    (pair,) = config.sync_pairs
    assert (pair.name, pair.port, pair.sslmode, pair.ecs_services) == ("app", 5432, "require", ("c/s",))
    (target,) = config.scan_targets
    assert target.regions == ("eu-west-1",)
    assert config.scan_schedule == "rate(1 hour)"
    assert config.max_age_days == 30


def test_dlq_url_equal_to_the_queue_url_is_refused() -> None:
    """A DLQ that is the queue itself would feed rejected messages straight back: refused at start-up."""
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, "ROTAUDIT_DLQ_URL": GOOD["ROTAUDIT_QUEUE_URL"] + "/"})
    assert any(problem.startswith("ROTAUDIT_DLQ_URL: must not be") for problem in caught.value.problems)


@pytest.mark.parametrize(
    "expression",
    ["cron(0 0 30 2 ? *)", "cron(0 0 31 4,6,9,11 ? *)", "cron(0 12 1 1 ? 1999-2001)"],
    ids=["february-30", "31st-of-30-day-months", "years-gone-by"],
)
def test_a_cron_that_never_fires_is_refused(expression: str) -> None:
    """A schedule with no fire time from now on would stop the scan quietly: it is a configuration error."""
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, "ROTAUDIT_SCAN_SCHEDULE": expression})
    assert any("never fires" in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    "tag",
    ["Managed=yes#no", "Managed=!true", "!Managed=true", "Owner=équipe", "Managed=" + "x" * 513, "Ma*naged=true"],
    ids=["hash-in-value", "negated-value", "negated-key", "non-ascii", "over-512", "star-in-key"],
)
def test_a_scan_tag_listsecrets_cannot_filter_on_is_refused(tag: str) -> None:
    """Key and value must fit ListSecrets' filter alphabet (≤ 512) and not start with '!', which AWS reads as not."""
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, "ROTAUDIT_SCAN_TAG": tag})
    assert any(problem.startswith("ROTAUDIT_SCAN_TAG") for problem in caught.value.problems)


@pytest.mark.parametrize("tag", ["Managed=true", "team/owner=platform-ops", "a:b=c@d+e.f!g", "Env=prod 1"])
def test_scan_tags_in_the_filter_alphabet_are_accepted(tag: str) -> None:
    """Tags made of the filter alphabet pass (a '!' is fine past the first character)."""
    assert load_config({**GOOD, "ROTAUDIT_SCAN_TAG": tag}).scan_tag == tag


def _pairs(*pairs: tuple[str, str, str]) -> str:
    return json.dumps([{"name": name, "source": source, "target": target} for name, source, target in pairs])


TARGET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/url-AbC123"


@pytest.mark.parametrize(
    ("pairs", "named"),
    [
        (_pairs(("a", "rds!db-1", "app/url"), ("b", "rds!db-2", "app/url")), ("a", "b")),
        (_pairs(("a", "rds!db-1", "app/url"), ("b", "rds!db-2", TARGET_ARN)), ("a", "b")),
        (_pairs(("a", "rds!db-1", TARGET_ARN.removesuffix("-AbC123")), ("b", "rds!db-2", TARGET_ARN)), ("a", "b")),
        (_pairs(("a", "rds!db-1", "app/url"), ("b", "app/url", "other/url")), ("a", "b")),
        (_pairs(("a", "app/url", "app/url")), ("a",)),
    ],
    ids=["same-name", "name-and-arn", "partial-and-full-arn", "source-is-a-target", "source-is-own-target"],
)
def test_sync_pairs_that_fight_over_a_target_are_refused(pairs: str, named: tuple[str, ...]) -> None:
    """Two pairs writing one target (or one reading another's) would rewrite it on every reconcile: exit 78."""
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, "ROTAUDIT_SYNC_PAIRS": pairs})
    (problem,) = [p for p in caught.value.problems if p.startswith("ROTAUDIT_SYNC_PAIRS")]
    assert all(f"'{name}'" in problem for name in named), problem


def test_sync_pairs_with_the_same_name_in_other_regions_are_distinct() -> None:
    """A target of the same name in another region, or (both by ARN) in another account, is another secret."""
    elsewhere = TARGET_ARN.replace("eu-west-1", "us-east-1")
    other_account = TARGET_ARN.replace("123456789012", "210987654321")
    pairs = _pairs(("a", "rds!db-1", TARGET_ARN), ("b", "rds!db-2", elsewhere), ("c", "rds!db-3", other_account))
    config = load_config({**GOOD, "ROTAUDIT_SYNC_PAIRS": pairs})
    assert [pair.name for pair in config.sync_pairs] == ["a", "b", "c"]
