"""The pure parts of the age scan: what one `ListSecrets` entry says, the verdict on it, which (account, region)
scopes a run covers, and what a run found. No I/O, no clock.

Age counts from the newer of `LastRotatedDate` and the AWSCURRENT version's creation (a manual new version is a
rotation), never from `LastChangedDate` (tags move it). The list call bounds the version's creation between the
secret's `CreatedDate` and its `LastChangedDate`; `needs_version_lookup` says when those bounds leave the verdict
open, which is the only case worth a `ListSecretVersionIds` call. A dangling AWSPENDING is `stuck_pending` only
once its version is older than a grace period: before that it is a rotation in progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from daemon.config_values import ScanTarget


class Status(StrEnum):
    OK = "ok"
    NEEDS_ROTATION = "needs_rotation"


class Reason(StrEnum):
    NEVER_ROTATED = "never_rotated"
    OLDER_THAN_MAX_AGE = "older_than_max_age"
    ROTATION_OVERDUE = "rotation_overdue"
    STUCK_PENDING = "stuck_pending"
    ROTATION_DISABLED = "rotation_disabled"


_FLAGGING = frozenset({Reason.OLDER_THAN_MAX_AGE, Reason.ROTATION_OVERDUE, Reason.STUCK_PENDING})
PENDING_GRACE = timedelta(minutes=60)  # ROTAUDIT_SCAN_PENDING_GRACE_MINUTES' default


def as_utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """What one `ListSecrets` entry says about a secret (names, dates, version ids; never a value)."""

    arn: str
    name: str
    rotation_enabled: bool = False
    created_at: datetime | None = None
    last_changed_at: datetime | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    current_version: str | None = None
    pending_version: str | None = None

    @classmethod
    def from_listing(cls, entry: dict[str, Any]) -> SecretFacts:
        stages: dict[str, list[str]] = entry.get("SecretVersionsToStages") or {}
        labelled = {label: version for version, labels in stages.items() for label in labels}
        return cls(
            arn=str(entry["ARN"]),
            name=str(entry["Name"]),
            rotation_enabled=bool(entry.get("RotationEnabled")),
            created_at=as_utc(entry.get("CreatedDate")),
            last_changed_at=as_utc(entry.get("LastChangedDate")),
            last_rotated_at=as_utc(entry.get("LastRotatedDate")),
            next_rotation_at=as_utc(entry.get("NextRotationDate")),
            current_version=labelled.get("AWSCURRENT"),
            pending_version=labelled.get("AWSPENDING"),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reasons: tuple[Reason, ...]
    age_days: float | None  # exact after a version lookup, else an upper bound that cannot change the status
    age_from: str  # last_rotated | current_version | created | unknown


def tag_matches(entry: dict[str, Any], key: str, value: str) -> bool:
    """The exact, case-sensitive check the ListSecrets prefix filter cannot do."""
    return any(tag.get("Key") == key and tag.get("Value") == value for tag in entry.get("Tags") or [])


def _newest(*candidates: tuple[datetime | None, str]) -> tuple[datetime | None, str]:
    best: tuple[datetime | None, str] = (None, "unknown")
    for moment, source in candidates:
        if moment is not None and (best[0] is None or moment > best[0]):
            best = (moment, source)
    return best


def needs_version_lookup(
    facts: SecretFacts, now: datetime, max_age_days: int, pending_grace: timedelta = PENDING_GRACE
) -> bool:
    """Whether a version's creation date could change the verdict the list call gives: the AWSCURRENT version's
    (for the age), or a dangling AWSPENDING version's (for `stuck_pending`, within the grace period)."""
    if _pending_in_doubt(facts, now, pending_grace):
        return True
    if facts.current_version is None:
        return False
    cutoff = now - timedelta(days=max_age_days)
    earliest, _ = _newest((facts.last_rotated_at, ""), (facts.created_at, ""))
    latest, _ = _newest((facts.last_rotated_at, ""), (facts.last_changed_at, ""))
    fresh_anyway = earliest is not None and earliest >= cutoff
    old_anyway = latest is not None and latest < cutoff
    return not (fresh_anyway or old_anyway)


def _dangling(facts: SecretFacts) -> bool:
    return facts.pending_version is not None and facts.pending_version != facts.current_version


def _pending_in_doubt(facts: SecretFacts, now: datetime, pending_grace: timedelta) -> bool:
    """A dangling AWSPENDING whose version may be younger than the grace: the secret changed within it."""
    return _dangling(facts) and facts.last_changed_at is not None and facts.last_changed_at > now - pending_grace


def _stuck(facts: SecretFacts, now: datetime, pending_grace: timedelta, pending_created_at: datetime | None) -> bool:
    """AWSPENDING off AWSCURRENT for longer than the grace period.

    AWSPENDING off AWSCURRENT is also the normal state while a rotation runs (AWS-FACTS §3), so only a pending
    version created more than `pending_grace` ago counts. Its creation is the version's CreatedDate when it was
    looked up, else bounded by the secret's LastChangedDate (adding the version changed the secret, so it is no
    younger than that); unknown dates count as stuck.
    """
    if not _dangling(facts):
        return False
    created = pending_created_at or facts.last_changed_at
    return created is None or created <= now - pending_grace


def classify(
    facts: SecretFacts,
    now: datetime,
    max_age_days: int,
    version_created_at: datetime | None = None,
    *,
    pending_created_at: datetime | None = None,
    pending_grace: timedelta = PENDING_GRACE,
) -> Verdict:
    """The status and reasons for one secret at `now`. Without `version_created_at`, the secret's creation
    stands in for the current version's (an earlier bound: the age is an upper bound). `pending_created_at` is
    the AWSPENDING version's creation, when it was looked up."""
    reference, source = _newest(
        (facts.last_rotated_at, "last_rotated"),
        (version_created_at, "current_version") if version_created_at else (facts.created_at, "created"),
    )
    reasons: list[Reason] = []
    if facts.last_rotated_at is None:
        reasons.append(Reason.NEVER_ROTATED)
    if reference is not None and reference < now - timedelta(days=max_age_days):
        reasons.append(Reason.OLDER_THAN_MAX_AGE)
    if facts.rotation_enabled and facts.next_rotation_at is not None and facts.next_rotation_at < now:
        reasons.append(Reason.ROTATION_OVERDUE)
    if _stuck(facts, now, pending_grace, pending_created_at):
        reasons.append(Reason.STUCK_PENDING)
    if not facts.rotation_enabled:
        reasons.append(Reason.ROTATION_DISABLED)
    status = Status.NEEDS_ROTATION if _FLAGGING.intersection(reasons) else Status.OK
    age_days = (now - reference) / timedelta(days=1) if reference is not None else None
    return Verdict(status, tuple(reasons), age_days, source)


@dataclass(frozen=True, slots=True)
class Scope:
    """One (account, region) a run lists: `role_arn` empty means the daemon's own credentials."""

    role_arn: str
    region: str

    @property
    def label(self) -> str:
        account = self.role_arn.split(":")[4] if self.role_arn else "default"
        return f"{account}/{self.region}"


def scopes_for(targets: Iterable[ScanTarget], home_region: str) -> list[Scope]:
    found = [Scope(t.role_arn, region) for t in targets for region in (t.regions or (home_region,))]
    return list(dict.fromkeys(found)) or [Scope("", home_region)]


@dataclass(frozen=True, slots=True)
class ScanResult:
    run_id: str
    outcome: str  # succeeded | partial (some scopes failed)
    checked: int
    flagged: int
    started_at: datetime
    finished_at: datetime
    scopes: tuple[str, ...] = ()
    failed_scopes: tuple[str, ...] = ()
    ages: dict[tuple[str, str, str], float] | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """What `rotaudit scan --once` prints."""
        return {"run_id": self.run_id, "checked": self.checked, "flagged": self.flagged}
