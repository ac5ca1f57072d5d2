"""Parsers of single setting values: raw environment text (or a TOML value) to a typed value, or a ValueError.

Pure: each parser names what is wrong with the one value it is given; `daemon.config` collects every problem and
checks the settings against each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from daemon.templates import pair_problems
from daemon.timer import parse_schedule, utc_now

ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# ListSecrets' filter values (botocore's secretsmanager model, FilterValueStringType:
# `^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`, at most 512); the optional leading '!' is AWS's negation, which a scan tag
# must not use.
FILTER_VALUE = re.compile(r"[a-zA-Z0-9 :_@/+=.\-!]*")
FILTER_VALUE_MAX = 512


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


Parser = Callable[[Any], Any]


def stripped(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def int_between(low: int, high: int) -> Parser:
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


def float_between(low: float, high: float) -> Parser:
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


def one_of(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        text = stripped(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def url(value: Any) -> str:
    text = stripped(value)
    if text and not re.match(r"^https?://[^\s/]+", text):
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/") if text.count("/") <= 3 else text


def table(value: Any) -> str:
    text = stripped(value)
    if text and not _TABLE.match(text):
        raise ValueError("must be 3-255 characters of letters, digits, '_', '.', '-'")
    return text


def list_of(pattern: re.Pattern[str], what: str) -> Parser:
    def parse(value: Any) -> frozenset[str]:
        items = value if isinstance(value, list) else str(value).split(",")
        cleaned = [str(item).strip() for item in items if str(item).strip()]
        bad = [item for item in cleaned if not pattern.match(item)]
        if bad:
            raise ValueError(f"{', '.join(bad)} is not a {what}")
        return frozenset(cleaned)

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def arn(service: str) -> Parser:
    def parse(value: Any) -> str:
        text = stripped(value)
        if text and not re.match(rf"^arn:aws[a-z-]*:{service}:", text):
            raise ValueError(f"must be an {service} ARN")
        return text

    return parse


def schedule(value: Any) -> str:
    """EventBridge schedule syntax: rate(N unit) or cron(6 fields), UTC; parsed fully so start-up names any error.

    A cron with no date left to fire on (`cron(0 0 30 2 ? *)`, or years gone by) is an error too: the scan timer
    would otherwise end at once and the daemon run on without a scan.
    """
    text = stripped(value)
    if parse_schedule(text).next_after(utc_now()) is None:  # ValueError names any syntax problem first
        raise ValueError("never fires: no date from now on matches it")
    return text


def tag(value: Any) -> str:
    """KEY=VALUE, each usable as a ListSecrets filter value (AWS-FACTS §3: the API's FilterValueStringType)."""
    text = stripped(value)
    key, sep, tag_value = text.partition("=")
    if not sep or not key or not tag_value:
        raise ValueError("must be KEY=VALUE, e.g. Managed=true")
    for what, part in (("key", key), ("value", tag_value)):
        if part.startswith("!"):
            raise ValueError(f"the {what} must not start with '!': ListSecrets reads a leading '!' as a negation")
        if len(part) > FILTER_VALUE_MAX or not FILTER_VALUE.fullmatch(part):
            raise ValueError(
                f"the {what} must be at most {FILTER_VALUE_MAX} of the characters ListSecrets filters accept: "
                "letters, digits, space and : _ @ / + = . - !"
            )
    return text


def json_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise ValueError(f"must be a JSON list ({exc.msg} at position {exc.pos})") from None
    if not isinstance(parsed, list):
        raise ValueError("must be a JSON list")
    return parsed


_PAIR_KEYS = frozenset(f.name for f in fields(SyncPair))


def sync_pairs(value: Any) -> tuple[SyncPair, ...]:
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


def scan_targets(value: Any) -> tuple[ScanTarget, ...]:
    targets: list[ScanTarget] = []
    for index, raw in enumerate(json_list(value)):
        if not isinstance(raw, dict) or set(raw) - {"role_arn", "regions"}:
            raise ValueError(f"target {index} must be an object with role_arn and/or regions")
        role = raw.get("role_arn", "")
        regions = raw.get("regions", [])
        if not isinstance(role, str) or (role and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", role)):
            raise ValueError(f"target {index}: role_arn must be an IAM role ARN")
        if not isinstance(regions, list) or not all(isinstance(r, str) and REGION.match(r) for r in regions):
            raise ValueError(f"target {index}: regions must be a list of region names")
        targets.append(ScanTarget(role_arn=role, regions=tuple(regions)))
    return tuple(targets)


def region(value: Any) -> str:
    text = stripped(value)
    if text and not REGION.match(text):
        raise ValueError("is not an AWS region name")
    return text


SecretKey = tuple[str, str | None, str]  # (region, account or None for "the daemon's own", name)


def secret_keys(ref: str, home_region: str) -> set[SecretKey]:
    """The secrets a pair's `source`/`target` may name: a name (home region, own account), a partial or a full ARN.

    A full ARN ends in "-" and 6 characters AWS added; a partial ARN does not, and a name may itself end that way,
    so an ARN that could be either stands for both.
    """
    if not ref.startswith("arn:"):
        return {(home_region, None, ref)}
    parts = ref.split(":", 6)  # arn:partition:secretsmanager:region:account:secret:name[-XXXXXX]
    if len(parts) < 7:
        return {(home_region, None, ref)}
    region, account, name = parts[3], parts[4], parts[6]
    keys: set[SecretKey] = {(region, account, name)}
    if re.fullmatch(r".+-[A-Za-z0-9]{6}", name):
        keys.add((region, account, name[:-7]))
    return keys


def _same_secret(one: set[SecretKey], other: set[SecretKey]) -> bool:
    return any(
        (a[0], a[2]) == (b[0], b[2]) and (a[1] is None or b[1] is None or a[1] == b[1]) for a in one for b in other
    )


def sync_pair_conflicts(pairs: tuple[SyncPair, ...], home_region: str) -> list[str]:
    """Pairs that would fight over a secret: two writing one target, or one reading what another (or it) writes.

    Either way the target is rewritten on every reconcile (each write changes the other's input), so start-up
    refuses the combination, naming the pairs.
    """
    targets = [secret_keys(pair.target, home_region) for pair in pairs]
    problems: list[str] = []
    for i, pair in enumerate(pairs):
        for j in range(i + 1, len(pairs)):
            if _same_secret(targets[i], targets[j]):
                problems.append(f"pairs {pair.name!r} and {pairs[j].name!r} write the same target")
        source = secret_keys(pair.source, home_region)
        for j, other in enumerate(pairs):
            if _same_secret(source, targets[j]):
                whose = "its own target" if i == j else f"the target of pair {other.name!r}"
                problems.append(f"pair {pair.name!r} reads {whose} as its source")
    return problems
