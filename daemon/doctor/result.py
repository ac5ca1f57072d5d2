"""What a doctor check found: pure result types, the exit code they add up to, and their one JSON shape."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.errors import EXIT_FAILURE, EXIT_OK


class Status(enum.StrEnum):
    """PASS: works. FAIL: will not work (exit 1). WARN: may not work; doctor cannot tell. SKIP: not checked."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One check: a stable dotted `name` (`queue.exists`), its status, what was found, and what to do about it."""

    name: str
    status: Status
    detail: str = ""
    fix: str = ""


def passed(name: str, detail: str = "") -> Check:
    return Check(name, Status.PASS, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def warned(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, Status.WARN, detail, fix)


def skipped(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


def exit_code(checks: Iterable[Check]) -> int:
    """0 when nothing failed (warnings and skips included), 1 when any check failed."""
    return EXIT_FAILURE if any(check.status is Status.FAIL for check in checks) else EXIT_OK


def as_json(checks: Sequence[Check]) -> dict[str, Any]:
    """`rotaudit doctor --output json`: {"ok", "summary": {status: count}, "checks": [{name, status, detail, fix}]}."""
    summary = {status.value: sum(1 for check in checks if check.status is status) for status in Status}
    return {
        "ok": exit_code(checks) == EXIT_OK,
        "summary": summary,
        "checks": [
            {"name": check.name, "status": check.status.value, "detail": check.detail, "fix": check.fix}
            for check in checks
        ],
    }
