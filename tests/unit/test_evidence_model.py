"""The evidence report's pure aggregation: rotations, time to recover, time over the limit, compliance, fleet sums."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.evidence.model import FleetTotals, RunEntry, age_bin, secret_figures
from daemon.evidence.reader import period_weeks
from daemon.evidence.render_csv import cell
from tests.support.evidence import at

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def ev(name: str, when: str, rotation: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "event", "event_name": name, "event_time": f"2026-{when}:00.000Z", "rotation_id": rotation} | extra


def run(when: str, status: str, age: float | None, limit: float = 30) -> RunEntry:
    return RunEntry(f"2026-{when}:00.000Z", status, age, limit)


def test_rotations_count_once_per_rotation_id() -> None:
    """Secrets Manager's repeated records of one rotation count once, as started and as failed."""
    figures = secret_figures(
        ARN,
        [
            ev("RotationStarted", "07-01T10:00", "r1"),
            ev("RotationFailed", "07-01T10:05", "r1"),
            ev("RotationStarted", "07-01T10:10", "r1"),
            ev("RotationFailed", "07-01T10:15", "r1"),
        ],
        [],
    )
    assert (figures.rotations_started, figures.rotations_failed, figures.rotations_succeeded) == (1, 1, 0)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # failure → the next success, whichever rotation it belongs to
        ([ev("RotationFailed", "07-01T10:00", "r1"), ev("RotationSucceeded", "07-01T12:30", "r2")], [9000.0]),
        # a success before the failure does not recover it
        ([ev("RotationSucceeded", "07-01T09:00", "r0"), ev("RotationFailed", "07-01T10:00", "r1")], [None]),
        # two failures, one later success: each recovers at that success, from its own first record
        (
            [
                ev("RotationFailed", "07-01T10:00", "r1"),
                ev("RotationFailed", "07-01T11:00", "r2"),
                ev("RotationSucceeded", "07-01T12:00", "r3"),
            ],
            [7200.0, 3600.0],
        ),
    ],
)
def test_time_to_recover_runs_from_failure_to_the_next_success(
    events: list[dict[str, Any]], expected: list[float | None]
) -> None:
    """Time to recover per failure, None where no success followed in the period."""
    assert [f.recovery_s for f in secret_figures(ARN, events, []).failures] == expected


def test_remediations_count_by_outcome() -> None:
    """Remediation items count by their status, apart from the rotation events."""
    items = [{"kind": "remediation", "status": "recovered", "event_time": "2026-07-01T00:00:00.000Z"}] * 2 + [
        {"kind": "remediation", "status": "needs_human", "event_time": "2026-07-02T00:00:00.000Z"}
    ]
    assert secret_figures(ARN, items, []).remediations == {"needs_human": 1, "recovered": 2}


def test_runs_give_compliance_longest_over_age_and_the_last_age() -> None:
    """Compliant share, the largest age over the limit each run judged by, and the age at the latest run."""
    runs = [
        run("07-02T00:00", "needs_rotation", 40, limit=30),
        run("07-01T00:00", "ok", 20),
        run("07-03T00:00", "ok", 1),
    ]
    figures = secret_figures(ARN, [], runs)
    assert (figures.scan_runs, figures.compliant_runs, figures.ever_out_of_compliance) == (3, 2, True)
    assert figures.max_over_age_days == 10.0
    assert figures.age_days_at_end == 1


def test_a_run_without_an_age_is_never_over_the_limit() -> None:
    """A never-rotated secret's run without age_days counts as a run, not as time over the limit."""
    assert secret_figures(ARN, [], [run("07-01T00:00", "needs_rotation", None)]).max_over_age_days == 0.0


def test_fleet_totals_add_up_secrets() -> None:
    """The fleet sums secrets, counts those ever out of compliance, and bins ages at the end."""
    totals = FleetTotals()
    totals.add(secret_figures(ARN, [], [run("07-01T00:00", "ok", 3)]))
    totals.add(secret_figures(ARN + "2", [ev("RotationFailed", "07-01T00:00", "r")], [run("07-01T00:00", "x", 50)]))
    assert (totals.secrets, totals.secrets_ever_out_of_compliance, totals.failures_unrecovered) == (2, 1, 1)
    assert dict(totals.ages_at_end) == {"0-7": 1, "45-60": 1}
    assert totals.failures == []  # kept only when asked


@pytest.mark.parametrize(("age", "label"), [(0, "0-7"), (6.99, "0-7"), (7, "7-14"), (30, "30-45"), (90, "90+")])
def test_age_bins(age: float, label: str) -> None:
    """Ages fall in [lower, upper) bins; 90 days and over share the last."""
    assert age_bin(age) == label


def test_period_weeks_cover_every_week_touched_and_no_more() -> None:
    """The Mondays of [since, until): an until on a Monday at midnight does not touch that week."""
    assert period_weeks(at("07-01T00:00"), at("07-13T00:00")) == ["2026-06-29", "2026-07-06"]
    assert period_weeks(at("07-01T00:00"), at("07-13T00:01")) == ["2026-06-29", "2026-07-06", "2026-07-13"]


def test_csv_cells() -> None:
    """Empty for none, lowercase booleans, `;` lists with unrecovered named, outcomes as name=count."""
    assert [cell(None), cell(True), cell([3600.0, None]), cell({"recovered": 2}), cell(0.83333)] == [
        "",
        "true",
        "3600;unrecovered",
        "recovered=2",
        "0.8333",
    ]
