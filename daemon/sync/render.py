"""Render a derived secret's value from its source secret: templates, fields, fallbacks, the target's shape.

Pure: no I/O, no logging. A problem is a `RenderError` whose `reason` comes from a closed set and whose `detail`
names fields, never values. Values live only in `Rendered.value` / `Rendered.url`, hidden from `repr`.

Templates use `{field}` placeholders from `TEMPLATE_FIELDS` and must contain `{password}`. `username`,
`password`, `dbname` and `sslmode` are substituted percent-encoded (`urllib.parse.quote(safe="")`); `host` must
be a host name or a bracketed IPv6 address and `port` a number from 1 to 65535, both substituted as they are.

Fields come from the source's JSON first (an RDS-managed `rds!...` secret holds only `username` and `password`),
then from the pair's settings, then from the URL in the target's current value. The password comes from the
source only. `sslmode` comes from the pair (default `require`).

The target's value is the rendered URL as a plain string, which ECS `secrets`, App Runner and
`DATABASE_URL`-reading frameworks take as it is. A target whose current value is a JSON object with a string
`DATABASE_URL` keeps that shape: that key is replaced and the object's other keys are kept.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from daemon.templates import DEFAULT_TEMPLATE, SSL_MODES, template_fields, template_problems, valid_host

JSON_KEY = "DATABASE_URL"
_ENCODED = frozenset({"username", "password", "dbname", "sslmode"})
_FALLBACK = ("username", "host", "port", "dbname")  # the password never falls back


class RenderReason(StrEnum):
    """Why a target cannot be rendered (closed set: the audit item's and the alert's `reason`)."""

    SOURCE_UNPARSEABLE = "source_unparseable"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    TARGET_UNPARSEABLE = "target_unparseable"
    BAD_TEMPLATE = "bad_template"


@dataclass(frozen=True, slots=True)
class RenderError:
    """A render that failed; `detail` names fields, never values."""

    reason: RenderReason
    detail: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """The target's new value (`value`: what to write) and the URL inside it; both hidden from `repr`."""

    value: str = field(repr=False)
    url: str = field(repr=False)
    shape: str  # "plain" or "json"
    changed: bool
    # sha256 of the URL rendered with the password left out: it changes with every other field, and says nothing
    # about the password, so it may go into the write's ClientRequestToken (a version id anyone with
    # DescribeSecret sees). A digest of the password would be an offline guessing oracle.
    fingerprint: str = field(repr=False, default="")


def render(
    source_value: str | None,
    target_value: str | None,
    *,
    template: str = "",
    settings: dict[str, Any] | None = None,
) -> Rendered | RenderError:
    """The target's new value from the source's SecretString, the pair's `settings` and the target's value.

    `settings` holds the pair's host, port, dbname, username and sslmode (empty or 0 when unset).
    `target_value` is the target's current SecretString, or None when it has none.
    """
    problems = template_problems(template)
    if problems:
        return RenderError(RenderReason.BAD_TEMPLATE, "; ".join(problems))
    template = template or DEFAULT_TEMPLATE
    source = _source_fields(source_value)
    if isinstance(source, RenderError):
        return source
    target = _target_shape(target_value)
    if isinstance(target, RenderError):
        return target
    shape, current_url, document = target
    needed = template_fields(template)
    values = _resolve(needed, source, settings or {}, current_url)
    if isinstance(values, RenderError):
        return values
    parts = list(string.Formatter().parse(template))
    url = "".join(literal + (_encode(name, values[name]) if name is not None else "") for literal, name, _, _ in parts)
    masked = "".join(
        literal + ("\x00" if name == "password" else _encode(name, values[name]) if name is not None else "")
        for literal, name, _, _ in parts
    )
    fingerprint = hashlib.sha256(f"{shape}\x1f{masked}".encode()).hexdigest()
    changed = url != current_url
    value = url
    if shape == "json":  # keep the object's other keys, and its text when nothing changed
        value = json.dumps({**document, JSON_KEY: url}) if changed else str(target_value)
    return Rendered(value=value, url=url, shape=shape, changed=changed, fingerprint=fingerprint)


def _source_fields(source_value: str | None) -> dict[str, str] | RenderError:
    if source_value is None:
        return RenderError(RenderReason.SOURCE_UNPARSEABLE, "source has no SecretString")
    try:
        document = json.loads(source_value)
    except ValueError:
        return RenderError(RenderReason.SOURCE_UNPARSEABLE, "source SecretString is not JSON")
    if not isinstance(document, dict):
        return RenderError(RenderReason.SOURCE_UNPARSEABLE, "source SecretString is not a JSON object")
    found: dict[str, str] = {}
    bad: list[str] = []
    for name in ("username", "password", "host", "port", "dbname"):
        raw = document.get(name)
        if raw is None or raw == "":
            continue
        if name == "port" and isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            bad.append(name)
            continue
        found[name] = raw
    if bad:
        return RenderError(RenderReason.BAD_FIELD, f"source field(s) {', '.join(bad)} must be strings")
    return found


def _target_shape(target_value: str | None) -> tuple[str, str | None, dict[str, Any]] | RenderError:
    """("plain" | "json", the URL the target holds now or None, the JSON document to keep)."""
    if target_value is None:
        return "plain", None, {}
    if not target_value.lstrip().startswith("{"):
        return "plain", target_value, {}
    try:
        document = json.loads(target_value)
    except ValueError:
        return RenderError(RenderReason.TARGET_UNPARSEABLE, "target value starts like JSON but is not JSON")
    if not isinstance(document, dict) or not isinstance(document.get(JSON_KEY), str):
        return RenderError(RenderReason.TARGET_UNPARSEABLE, f"target JSON has no string {JSON_KEY} key")
    return "json", document[JSON_KEY], document


def _resolve(
    needed: tuple[str, ...], source: dict[str, str], settings: dict[str, Any], current_url: str | None
) -> dict[str, str] | RenderError:
    values: dict[str, str] = {}
    for name in needed:
        if name in source:
            values[name] = source[name]
        elif name == "sslmode":
            values[name] = str(settings.get("sslmode") or "require")
        elif name != "password" and settings.get(name):
            values[name] = str(settings[name])
    missing = [name for name in needed if name not in values]
    if any(name in _FALLBACK for name in missing):
        from_target = _url_fields(current_url)
        if from_target is None:
            if current_url is not None:
                return RenderError(
                    RenderReason.TARGET_UNPARSEABLE,
                    f"target value is not a URL to take {', '.join(missing)} from",
                )
        else:
            values.update({name: from_target[name] for name in missing if name in from_target})
        missing = [name for name in needed if name not in values]
    if missing:
        return RenderError(
            RenderReason.MISSING_FIELD,
            f"no {', '.join(missing)} in the source, the pair's settings or the target",
        )
    bad = [name for name in needed if not _valid(name, values[name])]
    if bad:
        return RenderError(RenderReason.BAD_FIELD, f"field(s) {', '.join(bad)} not valid")
    return values


def _url_fields(url: str | None) -> dict[str, str] | None:
    """username, host, port and dbname from a URL; None when it is not a URL."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    found: dict[str, str] = {}
    host = parts.netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host:
        found["host"] = host
    try:
        if parts.port:
            found["port"] = str(parts.port)
    except ValueError:
        pass
    if parts.username:
        found["username"] = unquote(parts.username)
    dbname = unquote(parts.path.lstrip("/"))
    if dbname:
        found["dbname"] = dbname
    return found


def _valid(name: str, value: str) -> bool:
    if name == "host":
        return valid_host(value)
    if name == "port":
        return value.isascii() and value.isdigit() and 1 <= int(value) <= 65535
    if name == "sslmode":
        return value in SSL_MODES
    return bool(value)


def _encode(name: str, value: str) -> str:
    return quote(value, safe="") if name in _ENCODED else value
