"""The only reader of the environment: settings from `ROTAUDIT_*` variables over an optional TOML file.

Every problem is collected and reported at once (`ConfigError.problems`), so a bad deployment is fixed in one go.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from daemon import config_values as parse
from daemon.aws import profile_region
from daemon.config_values import Parser, ScanTarget, SyncPair
from daemon.errors import ConfigError

ENV_PREFIX = "ROTAUDIT_"
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("auto", "json", "console")


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings. Durations end in `_s`."""

    aws_region: str
    queue_url: str = ""
    audit_table: str = ""
    dlq_url: str = ""
    aws_endpoint_url: str = ""
    aws_profile: str = ""  # a profile of the AWS config files; "" means botocore's default (AWS_PROFILE, default)
    http_host: str = "0.0.0.0"
    http_port: int = 9108
    consumer_concurrency: int = 4
    max_in_flight: int = 100
    visibility_timeout_s: int = 60
    wait_time_s: int = 20
    drain_timeout_s: float = 20.0
    aws_max_attempts: int = 5
    allowed_accounts: frozenset[str] = field(default_factory=frozenset)
    allowed_regions: frozenset[str] = field(default_factory=frozenset)
    log_level: str = "info"
    log_format: str = "auto"
    # Remediation of failed rotations.
    remediation_mode: str = "apply"
    sns_topic_arn: str = ""
    remediation_budget: int = 3
    claim_lease_s: int = 300
    remediation_settle_s: int = 7200  # wait out Secrets Manager's own retries (README, Remediation)
    remediation_max_passes: int = 5  # failed passes (AWS errors) on one failure before it escalates, once
    remediation_retry_base_s: float = 60.0  # a RotateSecret retry waits 1/2-1x this, doubling per retry, up to 1 h
    remediation_poll_s: float = 15.0  # how often each replica looks for due remediation work
    # The age scan.
    scan_enabled: bool = True
    scan_schedule: str = "rate(1 hour)"
    scan_jitter_s: float = 0.0
    scan_tag: str = "Managed=true"
    max_age_days: int = 30
    scan_pending_grace_minutes: int = 60  # a dangling AWSPENDING younger than this is a rotation in progress
    scan_targets: tuple[ScanTarget, ...] = ()
    scan_age_gauge: bool = False  # opt-in: its labels name secrets, and /metrics needs no authentication
    # Derived secrets.
    sync_pairs: tuple[SyncPair, ...] = ()
    sync_interval_minutes: int = 15
    # DLQ gauges.
    dlq_poll_s: int = 60
    # Security Hub findings (BatchImportFindings into this region's hub).
    securityhub: bool = False
    # Open-failure gauges.
    failures_refresh_s: float = 60.0


SETTINGS: dict[str, tuple[Parser, str]] = {
    "queue_url": (parse.url, "ROTAUDIT_QUEUE_URL"),
    "audit_table": (parse.table, "ROTAUDIT_AUDIT_TABLE"),
    "dlq_url": (parse.url, "ROTAUDIT_DLQ_URL"),
    "http_host": (parse.stripped, "ROTAUDIT_HTTP_HOST"),
    "http_port": (parse.int_between(0, 65535), "ROTAUDIT_HTTP_PORT"),
    "consumer_concurrency": (parse.int_between(1, 64), "ROTAUDIT_CONSUMER_CONCURRENCY"),
    "max_in_flight": (parse.int_between(10, 10_000), "ROTAUDIT_MAX_IN_FLIGHT"),
    "visibility_timeout_s": (parse.int_between(10, 43_200), "ROTAUDIT_VISIBILITY_TIMEOUT_S"),
    "wait_time_s": (parse.int_between(0, 20), "ROTAUDIT_WAIT_TIME_S"),
    "drain_timeout_s": (parse.float_between(1, 110), "ROTAUDIT_DRAIN_TIMEOUT_S"),
    "aws_max_attempts": (parse.int_between(1, 20), "ROTAUDIT_AWS_MAX_ATTEMPTS"),
    "allowed_accounts": (parse.list_of(parse.ACCOUNT, "12-digit account id"), "ROTAUDIT_ALLOWED_ACCOUNTS"),
    "allowed_regions": (parse.list_of(parse.REGION, "region name"), "ROTAUDIT_ALLOWED_REGIONS"),
    "log_level": (parse.one_of(*_LOG_LEVELS), "ROTAUDIT_LOG_LEVEL"),
    "log_format": (parse.one_of(*_LOG_FORMATS), "ROTAUDIT_LOG_FORMAT"),
    "remediation_mode": (parse.one_of("apply", "dry-run", "off"), "ROTAUDIT_REMEDIATION_MODE"),
    "sns_topic_arn": (parse.arn("sns"), "ROTAUDIT_SNS_TOPIC_ARN"),
    "remediation_budget": (parse.int_between(0, 100), "ROTAUDIT_REMEDIATION_BUDGET"),
    "claim_lease_s": (parse.int_between(10, 3600), "ROTAUDIT_CLAIM_LEASE_S"),
    "remediation_settle_s": (parse.int_between(0, 86_400), "ROTAUDIT_REMEDIATION_SETTLE_S"),
    "remediation_max_passes": (parse.int_between(1, 50), "ROTAUDIT_REMEDIATION_MAX_PASSES"),
    "remediation_retry_base_s": (parse.float_between(1, 3600), "ROTAUDIT_REMEDIATION_RETRY_BASE_S"),
    "remediation_poll_s": (parse.float_between(1, 300), "ROTAUDIT_REMEDIATION_POLL_S"),
    "scan_enabled": (parse.boolean, "ROTAUDIT_SCAN_ENABLED"),
    "scan_schedule": (parse.schedule, "ROTAUDIT_SCAN_SCHEDULE"),
    "scan_jitter_s": (parse.float_between(0, 3600), "ROTAUDIT_SCAN_JITTER_S"),
    "scan_tag": (parse.tag, "ROTAUDIT_SCAN_TAG"),
    "max_age_days": (parse.int_between(1, 3650), "ROTAUDIT_MAX_AGE_DAYS"),
    "scan_pending_grace_minutes": (parse.int_between(0, 1440), "ROTAUDIT_SCAN_PENDING_GRACE_MINUTES"),
    "scan_targets": (parse.scan_targets, "ROTAUDIT_SCAN_TARGETS"),
    "scan_age_gauge": (parse.boolean, "ROTAUDIT_SCAN_AGE_GAUGE"),
    "sync_pairs": (parse.sync_pairs, "ROTAUDIT_SYNC_PAIRS"),
    "sync_interval_minutes": (parse.int_between(1, 1440), "ROTAUDIT_SYNC_INTERVAL_MINUTES"),
    "dlq_poll_s": (parse.int_between(5, 3600), "ROTAUDIT_DLQ_POLL_S"),
    "securityhub": (parse.boolean, "ROTAUDIT_SECURITYHUB"),
    "failures_refresh_s": (parse.float_between(1, 3600), "ROTAUDIT_FAILURES_REFRESH_S"),
}


@dataclass(frozen=True, slots=True)
class AwsOptions:
    """The AWS CLI's global options as `rotaudit` takes them (`--region`, `--profile`, `--endpoint-url`).

    Each one set wins over its environment variable. Passing them (even all empty) also turns on the AWS CLI's last
    resort for the region: the profile's `region` in the AWS config file, after AWS_REGION and AWS_DEFAULT_REGION.
    """

    region: str = ""
    profile: str = ""
    endpoint_url: str = ""


def _aws_settings(env: Mapping[str, str], options: AwsOptions | None, problems: list[str]) -> dict[str, str]:
    """aws_region, aws_endpoint_url and aws_profile, in the AWS CLI's order of precedence."""
    given = options or AwsOptions()
    profile = given.profile or env.get("AWS_PROFILE", "")
    region, region_from = "", "region"
    for value, name in (
        (given.region, "--region"),
        *((env.get(n, ""), n) for n in ("AWS_REGION", "AWS_DEFAULT_REGION")),
    ):
        if value:
            region, region_from = value, name
            break
    if options is not None and (profile or not region):
        try:
            from_profile = profile_region(profile)  # also proves that a named profile exists
        except ValueError as exc:
            problems.append(f"{'--profile' if given.profile else 'AWS_PROFILE'}: {exc}")
        else:
            region, region_from = (region, region_from) if region else (from_profile, "the profile's region")
    values = {"aws_profile": given.profile}  # botocore reads AWS_PROFILE itself
    try:
        values["aws_region"] = parse.region(region)
        if not region:
            where = ", --region or a profile's region" if options is not None else ""
            problems.append(f"AWS_REGION: required (or AWS_DEFAULT_REGION{where})")
    except ValueError as exc:
        problems.append(f"{region_from}: {exc}")
    endpoint_from = "--endpoint-url" if given.endpoint_url else "AWS_ENDPOINT_URL"
    try:
        values["aws_endpoint_url"] = parse.url(given.endpoint_url or env.get("AWS_ENDPOINT_URL", ""))
    except ValueError as exc:
        problems.append(f"{endpoint_from}: {exc}")
    return values


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"config file {path}: not found")
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"config file {path}: {exc}")
        return {}
    table = data.get("rotaudit", data)
    if not isinstance(table, dict):
        problems.append(f"config file {path}: [rotaudit] must be a table")
        return {}
    unknown = sorted(set(table) - set(SETTINGS))
    problems.extend(f"{key} (in {path}): unknown setting" for key in unknown)
    return {key: value for key, value in table.items() if key in SETTINGS}


def load_config(
    environ: Mapping[str, str] | None = None,
    toml_path: Path | None = None,
    *,
    required: Iterable[str] = ("queue_url", "audit_table"),
    aws: AwsOptions | None = None,
) -> Config:
    """Build the `Config` from `environ` over `toml_path`; raise `ConfigError` naming every bad field.

    `aws`: the command line's AWS options (the CLI passes them); they win over the environment.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, tuple[Any, str]] = {}
    if toml_path is not None:
        for key, value in _read_toml(toml_path, problems).items():
            raw[key] = (value, f"{key} (in {toml_path})")
    for key, (_, env_name) in SETTINGS.items():
        if env_name in env:
            raw[key] = (env[env_name], env_name)

    values: dict[str, Any] = {}
    for key, (value, where) in raw.items():
        parser = SETTINGS[key][0]
        try:
            values[key] = parser(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")

    for key in required:
        if values.get(key):
            continue
        if key not in values and not any(p.startswith(SETTINGS[key][1]) for p in problems):
            problems.append(f"{SETTINGS[key][1]}: required")
        elif key in values:
            problems.append(f"{SETTINGS[key][1]}: must not be empty")

    values.update(_aws_settings(env, aws, problems))

    defaults = {f.name: f.default for f in fields(Config)}
    drain_s = values.get("drain_timeout_s", defaults["drain_timeout_s"])
    visibility_s = values.get("visibility_timeout_s", defaults["visibility_timeout_s"])
    if drain_s >= visibility_s:
        problems.append("ROTAUDIT_DRAIN_TIMEOUT_S: must be below ROTAUDIT_VISIBILITY_TIMEOUT_S")
    problems.extend(
        f"ROTAUDIT_SYNC_PAIRS: {problem}"
        for problem in parse.sync_pair_conflicts(values.get("sync_pairs", ()), values.get("aws_region", ""))
    )
    dlq_url, queue_url = (str(values.get(key, "")).rstrip("/") for key in ("dlq_url", "queue_url"))
    if dlq_url and dlq_url == queue_url:
        # Rejected messages would go straight back to the queue they came from, for ever.
        problems.append("ROTAUDIT_DLQ_URL: must not be ROTAUDIT_QUEUE_URL itself")
    if problems:
        raise ConfigError(problems)
    known = {f.name for f in fields(Config)}
    return Config(**{key: value for key, value in values.items() if key in known})


def no_color(environ: Mapping[str, str] | None = None) -> bool:
    """Whether NO_COLOR (https://no-color.org) asks for output without colour: set and not empty."""
    return bool((os.environ if environ is None else environ).get("NO_COLOR", ""))


def dumb_terminal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether TERM=dumb says the terminal cannot redraw a line in place (no progress bar then)."""
    return (os.environ if environ is None else environ).get("TERM", "") == "dumb"


def documented_settings() -> list[tuple[str, str]]:
    """(environment variable, TOML key) for every setting, in declaration order."""
    return [(env_name, key) for key, (_, env_name) in SETTINGS.items()]
