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

ENV_PREFIX = "ROTAUDIT_"
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
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


# setting name -> (parser, environment variable). The TOML key is the setting name.
Parser = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def _int_between(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high}")
        return number

    return parse


def _float_between(low: float, high: float) -> Parser:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a number from {low:g} to {high:g}") from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low:g} to {high:g}")
        return number

    return parse


def _one_of(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        text = _str(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _url(value: Any) -> str:
    text = _str(value)
    if text and not re.match(r"^https?://[^\s/]+", text):
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/") if text.count("/") <= 3 else text


def _table(value: Any) -> str:
    text = _str(value)
    if text and not _TABLE.match(text):
        raise ValueError("must be 3-255 characters of letters, digits, '_', '.', '-'")
    return text


def _list_of(pattern: re.Pattern[str], what: str) -> Parser:
    def parse(value: Any) -> frozenset[str]:
        items = value if isinstance(value, list) else str(value).split(",")
        cleaned = [str(item).strip() for item in items if str(item).strip()]
        bad = [item for item in cleaned if not pattern.match(item)]
        if bad:
            raise ValueError(f"{', '.join(bad)} is not a {what}")
        return frozenset(cleaned)

    return parse


def _region(value: Any) -> str:
    text = _str(value)
    if text and not _REGION.match(text):
        raise ValueError("is not an AWS region name")
    return text


SETTINGS: dict[str, tuple[Parser, str]] = {
    "queue_url": (_url, "ROTAUDIT_QUEUE_URL"),
    "audit_table": (_table, "ROTAUDIT_AUDIT_TABLE"),
    "dlq_url": (_url, "ROTAUDIT_DLQ_URL"),
    "http_host": (_str, "ROTAUDIT_HTTP_HOST"),
    "http_port": (_int_between(0, 65535), "ROTAUDIT_HTTP_PORT"),
    "consumer_concurrency": (_int_between(1, 64), "ROTAUDIT_CONSUMER_CONCURRENCY"),
    "max_in_flight": (_int_between(10, 10_000), "ROTAUDIT_MAX_IN_FLIGHT"),
    "visibility_timeout_s": (_int_between(10, 43_200), "ROTAUDIT_VISIBILITY_TIMEOUT_S"),
    "wait_time_s": (_int_between(0, 20), "ROTAUDIT_WAIT_TIME_S"),
    "drain_timeout_s": (_float_between(1, 110), "ROTAUDIT_DRAIN_TIMEOUT_S"),
    "aws_max_attempts": (_int_between(1, 20), "ROTAUDIT_AWS_MAX_ATTEMPTS"),
    "allowed_accounts": (_list_of(_ACCOUNT, "12-digit account id"), "ROTAUDIT_ALLOWED_ACCOUNTS"),
    "allowed_regions": (_list_of(_REGION, "region name"), "ROTAUDIT_ALLOWED_REGIONS"),
    "log_level": (_one_of(*_LOG_LEVELS), "ROTAUDIT_LOG_LEVEL"),
    "log_format": (_one_of(*_LOG_FORMATS), "ROTAUDIT_LOG_FORMAT"),
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
        values["aws_endpoint_url"] = _url(env.get("AWS_ENDPOINT_URL", ""))
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
