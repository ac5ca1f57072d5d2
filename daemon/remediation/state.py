"""What remediation knows about a failed rotation: the failure, the secret's labels, its strategy, what came after.

Pure: parsed from DescribeSecret, the secret's tags and its audit history; no I/O, no clock. The facts each
field rests on (AWS-FACTS §2, the AWS rotation function templates) are named where the field is defined.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from daemon.events import RotationEvent

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
# The staging label that keeps a version the database may hold from being deprecated once AWSPENDING leaves it
# ("Versions that don't have staging labels are considered deprecated and Secrets Manager can delete them",
# DescribeSecret). One label per version, so setting one version aside never strips another.
HELD_LABEL_PREFIX = "rotaudit-held-"
TAG_STRATEGY = "rotaudit:strategy"
_TOKEN_NAMESPACE = uuid.UUID("6f1c1b0e-6c44-4d65-9a0e-2b5c2a4c7d31")


def held_label(version_id: str) -> str:
    """The label that keeps `version_id` reachable: `rotaudit-held-<first 8 characters of the version id>`."""
    return HELD_LABEL_PREFIX + version_id[:8]


class Strategy(StrEnum):
    """How the rotation function changes the database (AWS rotation templates).

    single-user: `setSecret` changes the user's own password, so AWSCURRENT stops working once it succeeds.
    alternating-users: `setSecret` changes the *other* user's password; AWSCURRENT keeps working throughout.
    unknown: rotaudit cannot tell, and decides as if either could be true.
    """

    SINGLE_USER = "single-user"
    ALTERNATING_USERS = "alternating-users"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, tags: Mapping[str, str], *, name: str = "", owning_service: str = "") -> Strategy:
        """From the `rotaudit:strategy` tag; RDS-managed secrets (`rds!…`, OwningService rds) rotate one user."""
        raw = tags.get(TAG_STRATEGY, "").strip().lower()
        if raw in {s.value for s in cls}:
            return cls(raw)
        if name.startswith("rds!") or owning_service.lower() == "rds":
            return cls.SINGLE_USER
        return cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class Failure:
    """The failed rotation being remediated: ids, names and the failing step only."""

    secret_arn: str
    secret_name: str
    rotation_id: str
    failed_at: datetime
    failed_step: str | None = None
    event_id: str = ""
    account: str | None = None
    region: str | None = None

    @classmethod
    def from_event(cls, event: RotationEvent) -> Failure:
        return cls(
            secret_arn=event.secret_arn,
            secret_name=event.secret_name,
            rotation_id=event.rotation_id,
            failed_at=event.event_time,
            failed_step=event.failed_step,
            event_id=event.event_id,
            account=event.account,
            region=event.region,
        )

    @property
    def new_version_token(self) -> str:
        """The deterministic `ClientRequestToken` of this failure's retry: a retried call never starts two."""
        return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{self.secret_arn}#{self.rotation_id}"))

    @property
    def restart_token(self) -> str:
        """The SSM `ClientToken` of this failure's consumer restart."""
        return str(uuid.uuid5(_TOKEN_NAMESPACE, f"restart#{self.secret_arn}#{self.rotation_id}"))


@dataclass(frozen=True, slots=True)
class SecretState:
    """What DescribeSecret says: labels, rotation settings and tags; never a value."""

    exists: bool = True
    rotation_enabled: bool = True
    current: str | None = None
    pending: str | None = None
    previous: str | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    deleted_at: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    owning_service: str = ""
    stages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # version id -> its labels

    @classmethod
    def from_describe(cls, described: Mapping[str, Any]) -> SecretState:
        """Parse a DescribeSecret response."""
        stages = {
            str(v): tuple(str(s) for s in (labels or []))
            for v, labels in (described.get("VersionIdsToStages") or {}).items()
        }

        def holder(label: str) -> str | None:
            return next((v for v, labels in stages.items() if label in labels), None)

        tags = {str(t.get("Key", "")): str(t.get("Value", "")) for t in described.get("Tags") or []}
        return cls(
            rotation_enabled=bool(described.get("RotationEnabled")),
            current=holder(CURRENT),
            pending=holder(PENDING),
            previous=holder(PREVIOUS),
            last_rotated_at=described.get("LastRotatedDate"),
            next_rotation_at=described.get("NextRotationDate"),
            deleted_at=described.get("DeletedDate"),
            tags=tags,
            name=str(described.get("Name", "")),
            owning_service=str(described.get("OwningService", "")),
            stages=stages,
        )

    @property
    def gone(self) -> bool:
        return not self.exists or self.deleted_at is not None

    @property
    def pending_dangles(self) -> bool:
        """AWSPENDING on a version other than AWSCURRENT: RotateSecret refuses ("assumes that a previous rotation
        request is still in progress and returns an error", RotateSecret API reference)."""
        return self.pending is not None and self.pending != self.current

    @property
    def pending_on_current(self) -> bool:
        """AWSPENDING on the AWSCURRENT version: what a successful rotation leaves (RotateSecret accepts it), and
        what a finishSecret that failed after promoting the pending version leaves."""
        return self.pending is not None and self.pending == self.current

    @property
    def strategy(self) -> Strategy:
        return Strategy.of(self.tags, name=self.name, owning_service=self.owning_service)

    def held(self, version_id: str) -> bool:
        """Whether `version_id` carries rotaudit's held label (set aside, kept from deprecation)."""
        return held_label(version_id) in self.stages.get(version_id, ())

    def diagnosis(self) -> dict[str, Any]:
        """The state as an audit/notification map: version ids, labels and dates, nothing else."""
        shown = {
            "exists": self.exists,
            "rotation_enabled": self.rotation_enabled,
            "current_version": self.current,
            "pending_version": self.pending,
            "previous_version": self.previous,
            "strategy": self.strategy.value,
            "held_versions": sorted(v for v in self.stages if self.held(v)) or None,
            "last_rotated_at": _iso(self.last_rotated_at),
            "next_rotation_at": _iso(self.next_rotation_at),
            "deleted_at": _iso(self.deleted_at),
        }
        return {key: value for key, value in shown.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Aftermath:
    """What the audit history shows about this rotation and what followed it (events at or after the failure).

    `current_moved_to`: versions a `Secret Label Updated` event shows AWSCURRENT moving to while this rotation ran
    (from its first RotationStarted to its failure). It is the history's half of the evidence a rollback needs.
    """

    succeeded_after: bool = False  # a RotationSucceeded for this secret at or after the failure
    later_rotation_started: bool = False  # a RotationStarted of another rotation after the failure
    abandoned_after: bool = False  # a RotationAbandoned: someone put a new value by hand
    current_moved_to: frozenset[str] = frozenset()

    @classmethod
    def from_history(cls, items: Iterable[Mapping[str, Any]], failure: Failure, failed_at_iso: str) -> Aftermath:
        """From the secret's audit items (event items only are read), newest or oldest first."""
        events = [i for i in items if i.get("kind") == "event"]
        started = [str(i.get("event_time", "")) for i in events if _is(i, "RotationStarted", failure.rotation_id)]
        began = min(started, default=failed_at_iso)
        after = [i for i in events if str(i.get("event_time", "")) >= failed_at_iso]
        moved = {
            str(i["version_id"])
            for i in events
            if i.get("label") == CURRENT
            and i.get("version_id")
            and began <= str(i.get("event_time", "")) <= failed_at_iso
        }
        return cls(
            succeeded_after=any(i.get("event_name") == "RotationSucceeded" for i in after),
            later_rotation_started=any(
                i.get("event_name") == "RotationStarted" and i.get("rotation_id") != failure.rotation_id for i in after
            ),
            abandoned_after=any(i.get("event_name") == "RotationAbandoned" for i in after),
            current_moved_to=frozenset(moved),
        )


def _is(item: Mapping[str, Any], name: str, rotation_id: str) -> bool:
    return item.get("event_name") == name and item.get("rotation_id") == rotation_id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
