"""The age scan's pure rules, table-driven: exact tag match, when to look a version up, the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.config_values import ScanTarget
from daemon.scan.rules import (
    Reason,
    Scope,
    SecretFacts,
    Status,
    classify,
    needs_version_lookup,
    scopes_for,
    tag_matches,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def facts(**overrides: Any) -> SecretFacts:
    base: dict[str, Any] = {
        "arn": ARN,
        "name": "app/db",
        "created_at": days_ago(100),
        "last_changed_at": days_ago(100),
        "current_version": "v1",
    }
    return SecretFacts(**(base | overrides))


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([{"Key": "Managed", "Value": "true"}], True),
        ([{"Key": "Team", "Value": "x"}, {"Key": "Managed", "Value": "true"}], True),
        ([{"Key": "Managed", "Value": "false"}], False),
        ([{"Key": "ManagedBy", "Value": "true"}], False),  # the prefix trap
        ([{"Key": "Managed", "Value": "trueish"}], False),
        ([{"Key": "managed", "Value": "true"}], False),
        ([{"Key": "Managed", "Value": "True"}], False),
        ([{"Key": "Other", "Value": "true"}, {"Key": "Managed", "Value": "no"}], False),
        ([], False),
        (None, False),
    ],
)
def test_tag_match_is_exact(tags: list[dict[str, str]] | None, expected: bool) -> None:
    """Key and value match exactly and case-sensitively, unlike the ListSecrets prefix filter."""
    assert tag_matches({"Tags": tags}, "Managed", "true") is expected


NEVER, OLD, OVERDUE, STUCK, DISABLED = (
    Reason.NEVER_ROTATED,
    Reason.OLDER_THAN_MAX_AGE,
    Reason.ROTATION_OVERDUE,
    Reason.STUCK_PENDING,
    Reason.ROTATION_DISABLED,
)
OK, NEEDS = Status.OK, Status.NEEDS_ROTATION
ON = {"rotation_enabled": True, "next_rotation_at": NOW + timedelta(days=5)}

VERDICTS = [
    ("rotated recently", {"last_rotated_at": days_ago(3), **ON}, None, Status.OK, (), 3.0, "last_rotated"),
    (
        "rotated long ago",
        {"last_rotated_at": days_ago(45), **ON},
        None,
        Status.NEEDS_ROTATION,
        (OLD,),
        45.0,
        "last_rotated",
    ),
    ("exactly max age", {"last_rotated_at": days_ago(30), **ON}, None, Status.OK, (), 30.0, "last_rotated"),
    ("never rotated, young", {"created_at": days_ago(5)}, None, Status.OK, (NEVER, DISABLED), 5.0, "created"),
    ("never rotated, old", {}, None, Status.NEEDS_ROTATION, (NEVER, OLD, DISABLED), 100.0, "created"),
    (
        "never rotated, new version",
        {"last_changed_at": days_ago(2)},
        days_ago(2),
        Status.OK,
        (NEVER, DISABLED),
        2.0,
        "current_version",
    ),
    (
        "manual version after an old rotation",
        {"last_rotated_at": days_ago(60), "last_changed_at": days_ago(1), **ON},
        days_ago(1),
        Status.OK,
        (),
        1.0,
        "current_version",
    ),
    (
        "tag change after an old rotation",
        {"last_rotated_at": days_ago(60), "last_changed_at": days_ago(1), **ON},
        days_ago(60),
        Status.NEEDS_ROTATION,
        (OLD,),
        60.0,
        "last_rotated",
    ),
    (
        "overdue",
        {"last_rotated_at": days_ago(10), "rotation_enabled": True, "next_rotation_at": days_ago(1)},
        None,
        Status.NEEDS_ROTATION,
        (OVERDUE,),
        10.0,
        "last_rotated",
    ),
    (
        "next date passed, rotation off",
        {"last_rotated_at": days_ago(10), "next_rotation_at": days_ago(1)},
        None,
        Status.OK,
        (DISABLED,),
        10.0,
        "last_rotated",
    ),
    (
        "stuck pending",
        {"last_rotated_at": days_ago(2), "pending_version": "v2", **ON},
        None,
        Status.NEEDS_ROTATION,
        (STUCK,),
        2.0,
        "last_rotated",
    ),
    (
        "pending on current is not stuck",
        {"last_rotated_at": days_ago(2), "pending_version": "v1", **ON},
        None,
        Status.OK,
        (),
        2.0,
        "last_rotated",
    ),
    (
        "everything at once",
        {"rotation_enabled": True, "next_rotation_at": days_ago(50), "pending_version": "v9"},
        None,
        Status.NEEDS_ROTATION,
        (NEVER, OLD, OVERDUE, STUCK),
        100.0,
        "created",
    ),
    (
        "no dates at all",
        {"created_at": None, "last_changed_at": None},
        None,
        Status.OK,
        (NEVER, DISABLED),
        None,
        "unknown",
    ),
]


@pytest.mark.parametrize(
    ("case", "fields", "version_created", "status", "reasons", "age_days", "age_from"),
    VERDICTS,
    ids=[row[0] for row in VERDICTS],
)
def test_verdict(
    case: str,
    fields: dict[str, Any],
    version_created: datetime | None,
    status: Status,
    reasons: tuple[Reason, ...],
    age_days: float | None,
    age_from: str,
) -> None:
    """Status, reasons (in their fixed order), age and what the age counts from."""
    verdict = classify(facts(**fields), NOW, 30, version_created)
    assert (verdict.status, verdict.reasons, verdict.age_from) == (status, reasons, age_from)
    assert verdict.age_days == (pytest.approx(age_days) if age_days is not None else None)


LOOKUPS = [
    ("rotated recently: fresh whatever the version", {"last_rotated_at": days_ago(3)}, False),
    (
        "created recently: fresh whatever the version",
        {"created_at": days_ago(3), "last_changed_at": days_ago(3)},
        False,
    ),
    ("nothing changed for long: old whatever the version", {"last_rotated_at": days_ago(60)}, False),
    ("never rotated, untouched for long", {}, False),
    (
        "old rotation, recent change: the version decides",
        {"last_rotated_at": days_ago(60), "last_changed_at": days_ago(1)},
        True,
    ),
    ("never rotated, recent change: the version decides", {"last_changed_at": days_ago(1)}, True),
    ("no current version", {"last_changed_at": days_ago(1), "current_version": None}, False),
    (
        "dangling pending, changed within the grace: the pending version decides",
        {"last_rotated_at": days_ago(3), "pending_version": "v2", "last_changed_at": NOW - timedelta(minutes=5)},
        True,
    ),
    ("dangling pending, unchanged for long: stuck whatever the version", {"pending_version": "v2"}, False),
]


@pytest.mark.parametrize(("case", "fields", "expected"), LOOKUPS, ids=[row[0] for row in LOOKUPS])
def test_version_lookup_only_where_it_can_change_the_verdict(case: str, fields: dict[str, Any], expected: bool) -> None:
    """ListSecretVersionIds is needed only when the list call's date bounds straddle the cutoff."""
    assert needs_version_lookup(facts(**fields), NOW, 30) is expected


def test_listing_entry_becomes_facts() -> None:
    """Labels map to version ids and dates become UTC; a missing rotation section means rotation off."""
    entry = {
        "ARN": ARN,
        "Name": "app/db",
        "CreatedDate": datetime(2026, 1, 1, 14, 0, tzinfo=UTC).astimezone(),
        "SecretVersionsToStages": {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"], "v2": ["AWSPENDING"]},
    }
    parsed = SecretFacts.from_listing(entry)
    assert (parsed.current_version, parsed.pending_version, parsed.rotation_enabled) == ("v1", "v2", False)
    assert parsed.created_at == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    assert parsed.created_at.tzinfo is UTC
    assert parsed.last_rotated_at is None


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ((), [Scope("", "us-east-1")]),
        ((ScanTarget(regions=("eu-west-1", "us-east-1")),), [Scope("", "eu-west-1"), Scope("", "us-east-1")]),
        (
            (ScanTarget(role_arn="arn:aws:iam::111122223333:role/scan"), ScanTarget(regions=("eu-west-1",))),
            [Scope("arn:aws:iam::111122223333:role/scan", "us-east-1"), Scope("", "eu-west-1")],
        ),
        ((ScanTarget(regions=("eu-west-1",)), ScanTarget(regions=("eu-west-1",))), [Scope("", "eu-west-1")]),
    ],
)
def test_targets_become_scopes(targets: tuple[ScanTarget, ...], expected: list[Scope]) -> None:
    """No targets: the home region; a target without regions: the home region; duplicates once."""
    assert scopes_for(targets, "us-east-1") == expected


def test_scope_labels_name_account_and_region() -> None:
    """Run items list scopes as account/region; the daemon's own account is `default`."""
    assert Scope("arn:aws:iam::111122223333:role/scan", "eu-west-1").label == "111122223333/eu-west-1"
    assert Scope("", "us-east-1").label == "default/us-east-1"


MINUTES = timedelta(minutes=1)
PENDING_CASES = [
    ("changed past the grace", {"last_changed_at": NOW - 61 * MINUTES}, None, 60, True),
    ("changed within the grace: a rotation running", {"last_changed_at": NOW - 10 * MINUTES}, None, 60, False),
    ("version older than the grace", {"last_changed_at": NOW - 5 * MINUTES}, NOW - 90 * MINUTES, 60, True),
    ("version within the grace", {"last_changed_at": NOW - 5 * MINUTES}, NOW - 20 * MINUTES, 60, False),
    ("no grace", {"last_changed_at": NOW}, None, 0, True),
    ("no dates at all", {"last_changed_at": None}, None, 60, True),
    ("pending on current", {"pending_version": "v1"}, NOW - 90 * MINUTES, 60, False),
]


@pytest.mark.parametrize(
    ("case", "fields", "pending_created", "grace_minutes", "stuck"), PENDING_CASES, ids=[c[0] for c in PENDING_CASES]
)
def test_stuck_pending_only_after_the_grace_period(
    case: str, fields: dict[str, Any], pending_created: datetime | None, grace_minutes: int, stuck: bool
) -> None:
    """A dangling AWSPENDING is a rotation in progress until its version is older than the grace period."""
    verdict = classify(
        facts(**{"last_rotated_at": days_ago(3), "pending_version": "v2", **fields}),
        NOW,
        30,
        pending_created_at=pending_created,
        pending_grace=grace_minutes * MINUTES,
    )
    assert (Reason.STUCK_PENDING in verdict.reasons) is stuck
    assert verdict.status is (Status.NEEDS_ROTATION if stuck else Status.OK)
