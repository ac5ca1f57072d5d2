"""The evidence report's figures: pure aggregation of one secret's items in a period, and the fleet's running totals.

No I/O. A secret's figures come from its items in [since, until): event and remediation items (`kind` event or
remediation) and the run entries of its daily scan rollups (`daemon.scan.rollup`). Definitions:
- a rotation is counted once per rotation id: started (any RotationStarted), succeeded, failed (any RotationFailed;
  Secrets Manager's retries repeat the record with the same id);
- a failure's time to recover runs from its first RotationFailed to the next RotationSucceeded of the secret in the
  period; none there means unrecovered as of `until` (the report does not look past its period, so a second run
  over the same period reads the same items);
- time over the age limit is, per scan run, age minus the limit the run judged by; the longest is its maximum (a
  stretch over the limit grows until a rotation ends it, so the maximum is the longest stretch seen);
- a run is compliant when its status is `ok`; a secret was ever out of compliance when one of its runs was not.
`FleetTotals` adds secrets up one at a time in constant memory (the CSV streams); with `keep_failures` it also
keeps each failure for the HTML's chart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from daemon.table import run_time_iso

AGE_BINS_DAYS = (7, 14, 21, 30, 45, 60, 90)  # upper bounds; the last bin is "90 days and over"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def week_of(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failed rotation: when, which step, and when the secret next rotated successfully (if in the period)."""

    secret_name: str
    rotation_id: str
    failed_at: str
    failed_step: str
    recovered_at: str | None
    recovery_s: float | None


@dataclass(frozen=True, slots=True)
class RunEntry:
    """One scan run's verdict on the secret (an entry of a daily rollup)."""

    at: str
    status: str
    age_days: float | None
    max_age_days: float

    @classmethod
    def parse(cls, run_id: str, value: str) -> RunEntry:
        """A rollup's entry (`daemon.table.run_entry`) of the run `run_id`."""
        status, age, limit = value.split("|")
        return cls(run_time_iso(run_id), status, float(age) if age else None, float(limit))

    @property
    def over_age_days(self) -> float:
        return max(0.0, self.age_days - self.max_age_days) if self.age_days is not None else 0.0


@dataclass(slots=True)
class SecretFigures:
    """One secret's figures for the period."""

    secret_arn: str
    secret_name: str
    rotations_started: int = 0
    rotations_succeeded: int = 0
    rotations_failed: int = 0
    remediations: dict[str, int] = field(default_factory=dict)  # outcome (the remediation item's status) → count
    failures: list[FailureRecord] = field(default_factory=list)
    scan_runs: int = 0
    compliant_runs: int = 0
    max_over_age_days: float = 0.0
    age_days_at_end: float | None = None
    weekly: dict[date, tuple[int, int]] = field(default_factory=dict)  # week → (runs, compliant runs)

    @property
    def ever_out_of_compliance(self) -> bool:
        return self.compliant_runs < self.scan_runs

    @property
    def compliant_share(self) -> float | None:
        return self.compliant_runs / self.scan_runs if self.scan_runs else None

    @property
    def recovered(self) -> list[FailureRecord]:
        return [f for f in self.failures if f.recovery_s is not None]

    @property
    def unrecovered(self) -> int:
        return sum(1 for f in self.failures if f.recovery_s is None)


def secret_figures(
    secret_arn: str, events: Iterable[Mapping[str, Any]], runs: Iterable[RunEntry], secret_name: str = ""
) -> SecretFigures:
    """The figures of one secret from its in-period event/remediation items and scan run entries."""
    items = sorted(events, key=lambda i: (str(i.get("event_time", "")), str(i.get("sk", ""))))
    name = secret_name or next((str(i["secret_name"]) for i in items if i.get("secret_name")), secret_arn)
    figures = SecretFigures(secret_arn, name)
    started: set[str] = set()
    succeeded: set[str] = set()
    first_failure: dict[str, Mapping[str, Any]] = {}
    successes: list[str] = []
    remediations: Counter[str] = Counter()
    for item in items:
        if item.get("kind") == "remediation":
            remediations[str(item.get("status", "unknown"))] += 1
            continue
        event, rotation = item.get("event_name"), str(item.get("rotation_id", ""))
        if event == "RotationStarted":
            started.add(rotation)
        elif event == "RotationSucceeded":
            succeeded.add(rotation)
            successes.append(str(item["event_time"]))
        elif event == "RotationFailed":
            first_failure.setdefault(rotation, item)
    figures.rotations_started, figures.rotations_succeeded = len(started), len(succeeded)
    figures.rotations_failed = len(first_failure)
    figures.remediations = dict(sorted(remediations.items()))
    for rotation, item in sorted(first_failure.items(), key=lambda kv: str(kv[1]["event_time"])):
        failed_at = str(item["event_time"])
        recovered_at = next((t for t in successes if t > failed_at), None)
        recovery_s = (parse_iso(recovered_at) - parse_iso(failed_at)).total_seconds() if recovered_at else None
        step = str(item.get("failed_step", ""))
        figures.failures.append(FailureRecord(name, rotation, failed_at, step, recovered_at, recovery_s))
    _add_runs(figures, runs)
    return figures


def _add_runs(figures: SecretFigures, runs: Iterable[RunEntry]) -> None:
    latest: RunEntry | None = None
    for run in runs:
        compliant = run.status == "ok"
        figures.scan_runs += 1
        figures.compliant_runs += compliant
        figures.max_over_age_days = max(figures.max_over_age_days, run.over_age_days)
        week = week_of(parse_iso(run.at))
        total, ok = figures.weekly.get(week, (0, 0))
        figures.weekly[week] = (total + 1, ok + compliant)
        if latest is None or run.at > latest.at:
            latest = run
    figures.age_days_at_end = latest.age_days if latest is not None else None


def age_bin(age_days: float) -> str:
    """The age distribution's bin label of an age in days."""
    lower = 0
    for upper in AGE_BINS_DAYS:
        if age_days < upper:
            return f"{lower}-{upper}"
        lower = upper
    return f"{lower}+"


def age_bin_labels() -> list[str]:
    lowers = (0, *AGE_BINS_DAYS[:-1])
    return [f"{lo}-{hi}" for lo, hi in zip(lowers, AGE_BINS_DAYS, strict=True)] + [f"{AGE_BINS_DAYS[-1]}+"]


@dataclass(slots=True)
class FleetTotals:
    """The fleet's figures, added up one secret at a time; memory is constant unless `keep_failures`."""

    keep_failures: bool = False
    secrets: int = 0
    secrets_ever_out_of_compliance: int = 0
    rotations_started: int = 0
    rotations_succeeded: int = 0
    rotations_failed: int = 0
    failures_recovered: int = 0
    failures_unrecovered: int = 0
    recovery_total_s: float = 0.0
    recovery_max_s: float | None = None
    remediations: Counter[str] = field(default_factory=Counter)
    scan_runs: int = 0
    compliant_runs: int = 0
    max_over_age_days: float = 0.0
    ages_at_end: Counter[str] = field(default_factory=Counter)
    weekly: dict[date, tuple[int, int]] = field(default_factory=dict)
    failures: list[FailureRecord] = field(default_factory=list)

    def add(self, figures: SecretFigures) -> None:
        self.secrets += 1
        self.secrets_ever_out_of_compliance += figures.ever_out_of_compliance
        self.rotations_started += figures.rotations_started
        self.rotations_succeeded += figures.rotations_succeeded
        self.rotations_failed += figures.rotations_failed
        for failure in figures.failures:
            if failure.recovery_s is None:
                self.failures_unrecovered += 1
                continue
            self.failures_recovered += 1
            self.recovery_total_s += failure.recovery_s
            self.recovery_max_s = max(self.recovery_max_s or 0.0, failure.recovery_s)
        if self.keep_failures:
            self.failures.extend(figures.failures)
        self.remediations.update(figures.remediations)
        self.scan_runs += figures.scan_runs
        self.compliant_runs += figures.compliant_runs
        self.max_over_age_days = max(self.max_over_age_days, figures.max_over_age_days)
        if figures.age_days_at_end is not None:
            self.ages_at_end[age_bin(figures.age_days_at_end)] += 1
        for week, (runs, ok) in figures.weekly.items():
            total, compliant = self.weekly.get(week, (0, 0))
            self.weekly[week] = (total + runs, compliant + ok)

    @property
    def compliant_share(self) -> float | None:
        return self.compliant_runs / self.scan_runs if self.scan_runs else None

    @property
    def recovery_mean_s(self) -> float | None:
        return self.recovery_total_s / self.failures_recovered if self.failures_recovered else None


def secret_summary(figures: SecretFigures) -> dict[str, Any]:
    """One secret's figures as plain values: the JSON's `secrets[]`, the CSV's row, the HTML's table row."""
    return {
        "secret_name": figures.secret_name,
        "secret_arn": figures.secret_arn,
        "ever_out_of_compliance": figures.ever_out_of_compliance,
        "rotations_started": figures.rotations_started,
        "rotations_succeeded": figures.rotations_succeeded,
        "rotations_failed": figures.rotations_failed,
        "failures_recovered": len(figures.recovered),
        "failures_unrecovered": figures.unrecovered,
        "recovery_seconds": [f.recovery_s for f in figures.failures],
        "remediations": sum(figures.remediations.values()),
        "remediation_outcomes": dict(figures.remediations),
        "max_over_age_days": round(figures.max_over_age_days, 2),
        "scan_runs": figures.scan_runs,
        "compliant_runs": figures.compliant_runs,
        "compliant_share": _share(figures.compliant_share),
        "age_days_at_end": figures.age_days_at_end,
    }


def fleet_summary(totals: FleetTotals) -> dict[str, Any]:
    """The fleet's figures as plain values (the JSON's `fleet`, the CSV's fleet row, the HTML's summary)."""
    return {
        "secrets": totals.secrets,
        "secrets_ever_out_of_compliance": totals.secrets_ever_out_of_compliance,
        "rotations_started": totals.rotations_started,
        "rotations_succeeded": totals.rotations_succeeded,
        "rotations_failed": totals.rotations_failed,
        "failures_recovered": totals.failures_recovered,
        "failures_unrecovered": totals.failures_unrecovered,
        "recovery_mean_s": _round(totals.recovery_mean_s),
        "recovery_max_s": _round(totals.recovery_max_s),
        "remediations": sum(totals.remediations.values()),
        "remediation_outcomes": dict(sorted(totals.remediations.items())),
        "max_over_age_days": round(totals.max_over_age_days, 2),
        "scan_runs": totals.scan_runs,
        "compliant_runs": totals.compliant_runs,
        "compliant_share": _share(totals.compliant_share),
        "age_distribution_at_end": {label: totals.ages_at_end.get(label, 0) for label in age_bin_labels()},
        "weekly_compliance": [
            {"week": week.isoformat(), "scan_runs": runs, "compliant_runs": ok, "compliant_share": _share(ok / runs)}
            for week, (runs, ok) in sorted(totals.weekly.items())
            if runs
        ],
    }


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
