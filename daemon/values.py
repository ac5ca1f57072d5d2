"""Parsers for setting values: each turns a raw value (TOML or environment text) into a typed one, or raises
ValueError with what is wrong. Pure; `daemon.config` names the setting in front of the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Parser = Callable[[Any], Any]


def string(value: Any) -> str:
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
        text = string(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def url(value: Any) -> str:
    text = string(value)
    if text and not re.match(r"^https?://[^\s/]+", text):
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/") if text.count("/") <= 3 else text


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def list_of(pattern: re.Pattern[str], what: str) -> Parser:
    def parse(value: Any) -> frozenset[str]:
        items = value if isinstance(value, list) else str(value).split(",")
        cleaned = [str(item).strip() for item in items if str(item).strip()]
        bad = [item for item in cleaned if not pattern.match(item)]
        if bad:
            raise ValueError(f"{', '.join(bad)} is not a {what}")
        return frozenset(cleaned)

    return parse


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
