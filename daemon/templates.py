"""The derived-secret template grammar: its fields, SSL modes and checks, shared by start-up validation and sync.

Templates use `{field}` placeholders from `TEMPLATE_FIELDS` and must contain `{password}`; `daemon.sync.render`
fills them. Pure: no I/O.
"""

from __future__ import annotations

import re
import string

TEMPLATE_FIELDS = ("username", "password", "host", "port", "dbname", "sslmode")
DEFAULT_TEMPLATE = "postgres://{username}:{password}@{host}:{port}/{dbname}?sslmode={sslmode}"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_HOST_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")


def template_problems(template: str) -> list[str]:
    """Every problem with a template ("" means the default); empty when it is usable. For start-up validation."""
    if not template:
        return []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:  # unbalanced braces; the message quotes no part of the template
        return [f"template is not a valid format string: {exc}"]
    problems: list[str] = []
    names: set[str] = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "":
            problems.append("positional placeholder {} is not allowed: name a field")
            continue
        if name not in TEMPLATE_FIELDS:
            shown = name if re.fullmatch(r"[A-Za-z0-9_]{1,40}", name) else "(not a plain name)"
            problems.append(f"unknown template field {{{shown}}}; allowed: {', '.join(TEMPLATE_FIELDS)}")
            continue
        if spec or conversion:
            problems.append(f"template field {{{name}}} must not have a format spec or conversion")
        names.add(name)
    if "password" not in names and not problems:
        problems.append("template must contain {password}")
    return problems


def pair_problems(*, template: str, sslmode: str, host: str, port: int) -> list[str]:
    """Every problem with one sync pair's rendering settings, for `config` to report at start-up."""
    problems = template_problems(template)
    if sslmode not in SSL_MODES:
        problems.append(f"sslmode must be one of {', '.join(SSL_MODES)}")
    if host and not valid_host(host):
        problems.append("host must be a host name or a bracketed IPv6 address")
    if port and not 1 <= port <= 65535:
        problems.append("port must be from 1 to 65535")
    return problems


def template_fields(template: str) -> tuple[str, ...]:
    """The fields a valid template uses, in order of first use."""
    seen: dict[str, None] = {}
    for _, name, _, _ in string.Formatter().parse(template or DEFAULT_TEMPLATE):
        if name is not None:
            seen.setdefault(name, None)
    return tuple(seen)


def valid_host(host: str) -> bool:
    """A host name or a bracketed IPv6 address."""
    return bool(_HOST_RE.fullmatch(host) or _IPV6_RE.fullmatch(host))
