"""The only reader of the environment: settings from `ROTAUDIT_*` variables over an optional TOML file.

Every problem is collected and reported at once (`ConfigError.problems`), so a bad deployment is fixed in one go.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError
from daemon.templates import pair_problems
from daemon.timer import parse_schedule
from daemon.values import boolean, float_between, int_between, json_list, list_of, one_of, string, url

ENV_PREFIX = "ROTAUDIT_"
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("auto", "json", "console")


@dataclass(frozen=True, slots=True)
class SyncPair:
    """A derived secret (`target`) rebuilt from `source` whenever the source rotates."""

    name: str
    source: str
    target: str
    host: str = ""
    port: int = 0
    dbname: str = ""
    username: str = ""
    sslmode: str = "require"
    template: str = ""
    ecs_services: tuple[str, ...] = ()  # "cluster/service" names to redeploy after an update


@dataclass(frozen=True, slots=True)
class ScanTarget:
    """Another account (through `role_arn`, assumed with STS) and/or other regions for the age scan."""

    role_arn: str = ""
    regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings. Durations end in `_s`."""

    aws_region: str
    queue_url: str = ""
    audit_table: str = ""
    dlq_url: str = ""
    aws_endpoint_url: str = ""
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
    remediation_retry_base_s: float = 60.0  # a RotateSecret retry waits ½-1x this, doubling per retry, up to 1 h
    remediation_poll_s: float = 15.0  # how often each replica looks for due remediation work
    # The age scan.
    scan_enabled: bool = True
    scan_schedule: str = "rate(1 hour)"
    scan_jitter_s: float = 0.0
    scan_tag: str = "Managed=true"
    max_age_days: int = 30
    scan_targets: tuple[ScanTarget, ...] = ()
    scan_age_gauge: bool = True
    # Derived secrets.
    sync_pairs: tuple[SyncPair, ...] = ()
    sync_interval_minutes: int = 15
    # DLQ gauges.
    dlq_poll_s: int = 60


# setting name -> (parser, environment variable). The TOML key is the setting name.
Parser = Callable[[Any], Any]


def _table(value: Any) -> str:
    text = string(value)
    if text and not _TABLE.match(text):
        raise ValueError("must be 3-255 characters of letters, digits, '_', '.', '-'")
    return text


def _arn(service: str) -> Parser:
    def parse(value: Any) -> str:
        text = string(value)
        if text and not re.match(rf"^arn:aws[a-z-]*:{service}:", text):
            raise ValueError(f"must be an {service} ARN")
        return text

    return parse


def _schedule(value: Any) -> str:
    """EventBridge schedule syntax: rate(N unit) or cron(6 fields), UTC; parsed fully so start-up names any error."""
    text = string(value)
    parse_schedule(text)  # ValueError names what is wrong
    return text


def _tag(value: Any) -> str:
    text = string(value)
    key, sep, tag_value = text.partition("=")
    if not sep or not key or not tag_value:
        raise ValueError("must be KEY=VALUE, e.g. Managed=true")
    return text


_PAIR_KEYS = frozenset(f.name for f in fields(SyncPair))


def _sync_pairs(value: Any) -> tuple[SyncPair, ...]:
    pairs: list[SyncPair] = []
    names: set[str] = set()
    for index, raw in enumerate(json_list(value)):
        where = f"pair {index}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be an object")
        unknown = sorted(set(raw) - _PAIR_KEYS)
        missing = [key for key in ("name", "source", "target") if not isinstance(raw.get(key), str) or not raw[key]]
        if unknown or missing:
            raise ValueError(
                f"{where}: " + "; ".join([*(f"unknown key {k}" for k in unknown), *(f"{k} required" for k in missing)])
            )
        if raw["name"] in names:
            raise ValueError(f"{where}: name {raw['name']!r} is used twice")
        names.add(raw["name"])
        port = raw.get("port", 0)
        if isinstance(port, bool) or not isinstance(port, int | str) or not str(port).isdigit() or int(port) > 65535:
            raise ValueError(f"{where}: port must be a whole number up to 65535")
        services = raw.get("ecs_services", [])
        if not isinstance(services, list) or not all(isinstance(s, str) and "/" in s for s in services):
            raise ValueError(f"{where}: ecs_services must be a list of cluster/service names")
        text_keys = ("host", "dbname", "username", "sslmode", "template")
        if any(not isinstance(raw.get(key, ""), str) for key in text_keys):
            raise ValueError(f"{where}: {', '.join(text_keys)} must be strings")
        problems = pair_problems(
            template=raw.get("template", ""),
            sslmode=raw.get("sslmode", "require"),
            host=raw.get("host", ""),
            port=int(port),
        )
        if problems:
            raise ValueError(f"{where} ({raw['name']}): " + "; ".join(problems))
        pairs.append(
            SyncPair(
                name=raw["name"],
                source=raw["source"],
                target=raw["target"],
                port=int(port),
                ecs_services=tuple(services),
                **{key: raw[key] for key in text_keys if key in raw},
            )
        )
    return tuple(pairs)


def _scan_targets(value: Any) -> tuple[ScanTarget, ...]:
    targets: list[ScanTarget] = []
    for index, raw in enumerate(json_list(value)):
        if not isinstance(raw, dict) or set(raw) - {"role_arn", "regions"}:
            raise ValueError(f"target {index} must be an object with role_arn and/or regions")
        role = raw.get("role_arn", "")
        regions = raw.get("regions", [])
        if not isinstance(role, str) or (role and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", role)):
            raise ValueError(f"target {index}: role_arn must be an IAM role ARN")
        if not isinstance(regions, list) or not all(isinstance(r, str) and _REGION.match(r) for r in regions):
            raise ValueError(f"target {index}: regions must be a list of region names")
        targets.append(ScanTarget(role_arn=role, regions=tuple(regions)))
    return tuple(targets)


def _region(value: Any) -> str:
    text = string(value)
    if text and not _REGION.match(text):
        raise ValueError("is not an AWS region name")
    return text


SETTINGS: dict[str, tuple[Parser, str]] = {
    "queue_url": (url, "ROTAUDIT_QUEUE_URL"),
    "audit_table": (_table, "ROTAUDIT_AUDIT_TABLE"),
    "dlq_url": (url, "ROTAUDIT_DLQ_URL"),
    "http_host": (string, "ROTAUDIT_HTTP_HOST"),
    "http_port": (int_between(0, 65535), "ROTAUDIT_HTTP_PORT"),
    "consumer_concurrency": (int_between(1, 64), "ROTAUDIT_CONSUMER_CONCURRENCY"),
    "max_in_flight": (int_between(10, 10_000), "ROTAUDIT_MAX_IN_FLIGHT"),
    "visibility_timeout_s": (int_between(10, 43_200), "ROTAUDIT_VISIBILITY_TIMEOUT_S"),
    "wait_time_s": (int_between(0, 20), "ROTAUDIT_WAIT_TIME_S"),
    "drain_timeout_s": (float_between(1, 110), "ROTAUDIT_DRAIN_TIMEOUT_S"),
    "aws_max_attempts": (int_between(1, 20), "ROTAUDIT_AWS_MAX_ATTEMPTS"),
    "allowed_accounts": (list_of(_ACCOUNT, "12-digit account id"), "ROTAUDIT_ALLOWED_ACCOUNTS"),
    "allowed_regions": (list_of(_REGION, "region name"), "ROTAUDIT_ALLOWED_REGIONS"),
    "log_level": (one_of(*_LOG_LEVELS), "ROTAUDIT_LOG_LEVEL"),
    "log_format": (one_of(*_LOG_FORMATS), "ROTAUDIT_LOG_FORMAT"),
    "remediation_mode": (one_of("apply", "dry-run", "off"), "ROTAUDIT_REMEDIATION_MODE"),
    "sns_topic_arn": (_arn("sns"), "ROTAUDIT_SNS_TOPIC_ARN"),
    "remediation_budget": (int_between(0, 100), "ROTAUDIT_REMEDIATION_BUDGET"),
    "claim_lease_s": (int_between(10, 3600), "ROTAUDIT_CLAIM_LEASE_S"),
    "remediation_settle_s": (int_between(0, 86_400), "ROTAUDIT_REMEDIATION_SETTLE_S"),
    "remediation_max_passes": (int_between(1, 50), "ROTAUDIT_REMEDIATION_MAX_PASSES"),
    "remediation_retry_base_s": (float_between(1, 3600), "ROTAUDIT_REMEDIATION_RETRY_BASE_S"),
    "remediation_poll_s": (float_between(1, 300), "ROTAUDIT_REMEDIATION_POLL_S"),
    "scan_enabled": (boolean, "ROTAUDIT_SCAN_ENABLED"),
    "scan_schedule": (_schedule, "ROTAUDIT_SCAN_SCHEDULE"),
    "scan_jitter_s": (float_between(0, 3600), "ROTAUDIT_SCAN_JITTER_S"),
    "scan_tag": (_tag, "ROTAUDIT_SCAN_TAG"),
    "max_age_days": (int_between(1, 3650), "ROTAUDIT_MAX_AGE_DAYS"),
    "scan_targets": (_scan_targets, "ROTAUDIT_SCAN_TARGETS"),
    "scan_age_gauge": (boolean, "ROTAUDIT_SCAN_AGE_GAUGE"),
    "sync_pairs": (_sync_pairs, "ROTAUDIT_SYNC_PAIRS"),
    "sync_interval_minutes": (int_between(1, 1440), "ROTAUDIT_SYNC_INTERVAL_MINUTES"),
    "dlq_poll_s": (int_between(5, 3600), "ROTAUDIT_DLQ_POLL_S"),
}


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
) -> Config:
    """Build the `Config` from `environ` over `toml_path`; raise `ConfigError` naming every bad field."""
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

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    try:
        values["aws_region"] = _region(region)
        if not region:
            problems.append("AWS_REGION: required (or AWS_DEFAULT_REGION)")
    except ValueError as exc:
        problems.append(f"AWS_REGION: {exc}")
    try:
        values["aws_endpoint_url"] = url(env.get("AWS_ENDPOINT_URL", ""))
    except ValueError as exc:
        problems.append(f"AWS_ENDPOINT_URL: {exc}")

    defaults = {f.name: f.default for f in fields(Config)}
    drain_s = values.get("drain_timeout_s", defaults["drain_timeout_s"])
    visibility_s = values.get("visibility_timeout_s", defaults["visibility_timeout_s"])
    if drain_s >= visibility_s:
        problems.append("ROTAUDIT_DRAIN_TIMEOUT_S: must be below ROTAUDIT_VISIBILITY_TIMEOUT_S")
    if problems:
        raise ConfigError(problems)
    known = {f.name for f in fields(Config)}
    return Config(**{key: value for key, value in values.items() if key in known})


def documented_settings() -> list[tuple[str, str]]:
    """(environment variable, TOML key) for every setting, in declaration order."""
    return [(env_name, key) for key, (_, env_name) in SETTINGS.items()]
