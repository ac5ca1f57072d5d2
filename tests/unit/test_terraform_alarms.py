"""The CloudWatch metric filters and saved queries of deploy/terraform/modules/rotaudit match what the daemon logs.

alarms.tf filters the daemon's JSON log lines (daemon/logs.py: structlog's `event` name and `level`, then the
event's fields) by event name and field. A renamed log event or field would leave an alarm silently blind, so every
event name and field used there must be one the code logs: read from the daemon's own log calls with `ast`.
"""

from __future__ import annotations

import ast
import re

from tests.support import ROOT

ALARMS = ROOT / "deploy" / "terraform" / "modules" / "rotaudit" / "alarms.tf"
LOG_METHODS = {"debug", "info", "warning", "error", "exception"}
LEVELS = {"debug", "info", "warning", "error", "critical"}
STRUCTLOG_KEYS = {"event", "level", "timestamp", "component"}  # added by daemon/logs.py's processors


def _daemon_modules() -> list[ast.Module]:
    paths = [p for p in (ROOT / "daemon").rglob("*.py") if "devtools" not in p.parts]
    return [ast.parse(path.read_text(), str(path)) for path in paths]


def logged() -> tuple[set[str], set[str]]:
    """Event names and field names of the daemon's log calls (`self.log.info("x.y", field=...)`), with the event
    names held in `_FINISHED`-style tables and the keys of the dicts spread into log calls (`**_ids(event)`)."""
    events: set[str] = set()
    fields: set[str] = set(STRUCTLOG_KEYS)
    for module in _daemon_modules():
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS:
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    events.add(node.args[0].value)
                fields |= {kw.arg for kw in node.keywords if kw.arg is not None}
            elif isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
                values = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                # A table of log event names (remediator's _FINISHED) or a dict of fields spread into a log call.
                events |= {v for v in values if re.fullmatch(r"[a-z_]+\.[a-z_]+", v)}
                fields |= set(keys)
    return events, fields


def used_in_alarms() -> tuple[set[str], set[str], set[str]]:
    """Event names, fields and levels that alarms.tf's filter patterns and queries compare."""
    text = ALARMS.read_text().replace('\\"', '"')
    events = set(re.findall(r'\$\.event = "([^"]+)"', text)) | set(re.findall(r'\bevent = "([^"]+)"', text))
    for listed in re.findall(r"\bevent in \[([^\]]*)\]", text):
        events |= set(re.findall(r'"([^"]+)"', listed))
    fields = set(re.findall(r"\$\.(\w+)", text))
    for clause in re.findall(r"^\s*(?:fields|\| filter|\| stats.*by)\s+(.*)$", text, re.MULTILINE):
        unquoted = re.sub(r'"[^"]*"', "", clause)
        fields |= {word for word in re.findall(r"\b([a-z_]+)\b", unquoted) if not word.startswith("_")}
    levels = set(re.findall(r'\$\.level = "([^"]+)"', text))
    for listed in re.findall(r"\blevel in \[([^\]]*)\]", text):
        levels |= set(re.findall(r'"([^"]+)"', listed))
    return events, fields, levels


QUERY_WORDS = {"fields", "filter", "stats", "count", "latest", "as", "by", "sort", "asc", "desc", "limit", "or", "in"}
QUERY_WORDS |= {"rejected", "last_detail"}  # names the queries give their own results


def test_every_event_name_in_the_alarms_is_logged_by_the_daemon() -> None:
    events, _ = logged()
    used, _, _ = used_in_alarms()
    assert {"remediation.failed", "remediation.escalated", "message.rejected"} <= used  # the parse found them
    assert sorted(used - events) == []


def test_every_field_in_the_alarms_is_a_logged_field() -> None:
    _, fields = logged()
    _, used, _ = used_in_alarms()
    used -= QUERY_WORDS
    assert {"rotation_id", "reason", "result"} <= used
    assert sorted(used - fields) == []


def test_levels_are_structlog_levels() -> None:
    _, _, levels = used_in_alarms()
    assert levels
    assert levels <= LEVELS


def test_the_logs_are_json_with_event_and_level() -> None:
    """The filters need JSON lines: the task definition sets ROTAUDIT_LOG_FORMAT=json."""
    ecs = (ALARMS.parent / "ecs.tf").read_text()
    assert re.search(r'ROTAUDIT_LOG_FORMAT\s*=\s*"json"', ecs)
