"""What to do about a failed rotation: pure decisions from the failure, the secret's real state, policy and budget.

No I/O, no clock, no randomness (the caller passes the jitter). `plan_remediation` runs once per failed rotation
(AWS-FACTS §2); `decide_retry` re-checks a scheduled `RotateSecret` retry against fresh state when it falls due.

- AWSPENDING dangles after a createSecret/setSecret failure: remove it, retry with a new version token.
- AWSPENDING dangles after testSecret/finishSecret or an unknown step: keep it (the target may already use it)
  and retry resuming it (token = the pending version's id).
- AWSPENDING sits on AWSCURRENT (finishSecret moved AWSCURRENT within this rotation): where the secret allows
  rollback, roll back, clear AWSPENDING and retry; else escalate. Restart consumers either way, if configured.
- No AWSPENDING: retry with a new version token.
- Budget spent, rotation disabled, `notify-only`: escalate ("needs a human").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from daemon.events import RotationEvent

TAG_REMEDIATION = "rotaudit:remediation"
TAG_ROLLBACK = "rotaudit:rollback"
TAG_RESTART_DOCUMENT = "rotaudit:restart-document"
REMOVE_STEPS = frozenset({"createSecret", "setSecret"})  # the target never saw the pending credential
BUDGET_WINDOW_S = 24 * 3600
RETRY_BASE_S = 60.0
RETRY_CAP_S = 3600.0
# Names or ARNs of SSM documents (the API's own pattern, plus the ARN form for shared documents).
_DOCUMENT_RE = re.compile(r"^(?:arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:document/)?[A-Za-z0-9_.:/-]{3,128}$")
_TOKEN_NAMESPACE = uuid.UUID("6f1c1b0e-6c44-4d65-9a0e-2b5c2a4c7d31")


class Mode(StrEnum):
    APPLY = "apply"
    DRY_RUN = "dry-run"
    OFF = "off"


class SecretPolicy(StrEnum):
    """The `rotaudit:remediation` tag."""

    AUTO = "auto"
    NOTIFY_ONLY = "notify-only"
    OFF = "off"


class Resolution(StrEnum):
    """A remediation's outcome (closed set: a metric label, a notification kind, an audit value)."""

    REMEDIATED = "remediated"
    NEEDS_HUMAN = "needs_human"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Why the plan is what it is (closed set)."""

    SECRET_GONE = "secret_gone"  # noqa: S105 - a reason code, not a password
    ROTATED_SINCE = "rotated_since"
    POLICY_OFF = "policy_off"
    NOTIFY_ONLY = "notify_only"
    POLICY_UNRECOGNISED = "policy_unrecognised"
    ROTATION_DISABLED = "rotation_disabled"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CURRENT_MOVED = "current_moved"
    STUCK_PENDING_CLEARED = "stuck_pending_cleared"
    PENDING_KEPT = "pending_kept"
    ROLLED_BACK = "rolled_back"
    NO_PENDING = "no_pending"
    ROTATION_IN_PROGRESS = "rotation_in_progress"
    ACTION_FAILED = "action_failed"


class ActionKind(StrEnum):
    REMOVE_PENDING = "remove_pending"
    ROLLBACK = "rollback"
    RESTART_CONSUMERS = "restart_consumers"
    ROTATE = "rotate"


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
    """What DescribeSecret says (AWS-FACTS §2): labels, rotation settings and tags; never a value."""

    exists: bool = True
    rotation_enabled: bool = True
    current: str | None = None
    pending: str | None = None
    previous: str | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    deleted_at: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_describe(cls, described: Mapping[str, Any]) -> SecretState:
        """Parse a DescribeSecret response."""
        stages = described.get("VersionIdsToStages") or {}

        def holder(label: str) -> str | None:
            return next((str(v) for v, labels in stages.items() if label in (labels or [])), None)

        tags = {str(t.get("Key", "")): str(t.get("Value", "")) for t in described.get("Tags") or []}
        return cls(
            rotation_enabled=bool(described.get("RotationEnabled")),
            current=holder("AWSCURRENT"),
            pending=holder("AWSPENDING"),
            previous=holder("AWSPREVIOUS"),
            last_rotated_at=described.get("LastRotatedDate"),
            next_rotation_at=described.get("NextRotationDate"),
            deleted_at=described.get("DeletedDate"),
            tags=tags,
        )

    @property
    def pending_dangles(self) -> bool:
        """AWSPENDING on a version other than AWSCURRENT: RotateSecret refuses to start a new rotation."""
        return self.pending is not None and self.pending != self.current

    @property
    def pending_on_current(self) -> bool:
        """AWSPENDING on the AWSCURRENT version: left by a successful rotation, or by a finishSecret that failed
        after promoting the pending version (only the failing step tells which)."""
        return self.pending is not None and self.pending == self.current

    def diagnosis(self) -> dict[str, Any]:
        """The state as an audit/notification map: version ids and dates, nothing else."""
        shown = {
            "exists": self.exists,
            "rotation_enabled": self.rotation_enabled,
            "current_version": self.current,
            "pending_version": self.pending,
            "previous_version": self.previous,
            "last_rotated_at": _iso(self.last_rotated_at),
            "next_rotation_at": _iso(self.next_rotation_at),
            "deleted_at": _iso(self.deleted_at),
        }
        return {key: value for key, value in shown.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Policy:
    """Global mode plus the secret's own tags."""

    mode: Mode = Mode.APPLY
    remediation: SecretPolicy | None = SecretPolicy.AUTO  # None: a tag value we do not recognise
    rollback_allowed: bool = False
    restart_document: str | None = None
    retry_base_s: float = RETRY_BASE_S
    retry_cap_s: float = RETRY_CAP_S

    @classmethod
    def for_secret(
        cls,
        mode: Mode,
        tags: Mapping[str, str],
        *,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
    ) -> Policy:
        raw = tags.get(TAG_REMEDIATION, SecretPolicy.AUTO.value).strip().lower()
        remediation = SecretPolicy(raw) if raw in {p.value for p in SecretPolicy} else None
        document = tags.get(TAG_RESTART_DOCUMENT, "").strip()
        return cls(
            mode=mode,
            remediation=remediation,
            rollback_allowed=tags.get(TAG_ROLLBACK, "").strip().lower() == "allowed",
            restart_document=document if _DOCUMENT_RE.fullmatch(document) else None,
            retry_base_s=retry_base_s,
            retry_cap_s=retry_cap_s,
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """RotateSecret attempts rotaudit made for this secret in the last 24 h, against the limit."""

    limit: int
    used: int = 0

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


@dataclass(frozen=True, slots=True)
class Action:
    """One step. `version_id`/`move_to` for label moves, `document` for a restart, `token` for a rotation."""

    kind: ActionKind
    version_id: str | None = None
    move_to: str | None = None
    document: str | None = None
    token: str | None = None
    delay_s: float = 0.0

    def to_item(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "action": self.kind.value,
            "version_id": self.version_id,
            "move_to": self.move_to,
            "document": self.document,
            "token": self.token,
            "delay_s": round(self.delay_s) if self.kind is ActionKind.ROTATE else None,  # DynamoDB takes no floats
        }
        return {key: value for key, value in shown.items() if value is not None}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Action:
        return cls(
            kind=ActionKind(item["action"]),
            version_id=item.get("version_id"),
            move_to=item.get("move_to"),
            document=item.get("document"),
            token=item.get("token"),
            delay_s=float(item.get("delay_s", 0)),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Immediate actions (in order), an optional scheduled RotateSecret retry, and the outcome they lead to."""

    resolution: Resolution
    reason: Reason
    actions: tuple[Action, ...] = ()
    retry: Action | None = None
    dry_run: bool = False

    def to_item(self) -> dict[str, Any]:
        actions = [action.to_item() for action in self.actions]
        item = {"resolution": self.resolution.value, "reason": self.reason.value, "actions": actions}
        return {**item, "dry_run": self.dry_run, **({"retry": self.retry.to_item()} if self.retry else {})}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Plan:
        retry = item.get("retry")
        return cls(
            resolution=Resolution(item["resolution"]),
            reason=Reason(item["reason"]),
            actions=tuple(Action.from_item(a) for a in item.get("actions", [])),
            retry=Action.from_item(retry) if retry else None,
            dry_run=bool(item.get("dry_run")),
        )


def retry_delay_s(attempts_used: int, jitter: float, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random (`jitter` in [0, 1))."""
    step = min(cap_s, base_s * float(2 ** min(attempts_used, 30)))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)


def plan_remediation(failure: Failure, state: SecretState, policy: Policy, budget: Budget, *, jitter: float) -> Plan:
    """The plan for one failed rotation, from real state. See the module docstring for the table."""
    dry_run = policy.mode is Mode.DRY_RUN
    if not state.exists or state.deleted_at is not None:
        return Plan(Resolution.SKIPPED, Reason.SECRET_GONE, dry_run=dry_run)
    if policy.remediation is SecretPolicy.OFF:
        return Plan(Resolution.SKIPPED, Reason.POLICY_OFF, dry_run=dry_run)
    if policy.remediation is None:
        return Plan(Resolution.NEEDS_HUMAN, Reason.POLICY_UNRECOGNISED, dry_run=dry_run)
    if policy.remediation is SecretPolicy.NOTIFY_ONLY:
        return Plan(Resolution.NEEDS_HUMAN, Reason.NOTIFY_ONLY, dry_run=dry_run)
    # Only finishSecret moves AWSCURRENT, and by then this rotation's createSecret had put AWSPENDING on its own
    # version: AWSPENDING on AWSCURRENT after a finishSecret failure means AWSCURRENT moved within this rotation.
    # After any other step it is a label a successful rotation left behind, which blocks nothing.
    current_moved = state.pending_on_current and failure.failed_step == "finishSecret"
    if not current_moved and _rotated_since(failure, state):
        return Plan(Resolution.SKIPPED, Reason.ROTATED_SINCE, dry_run=dry_run)
    if not state.rotation_enabled:
        return Plan(Resolution.NEEDS_HUMAN, Reason.ROTATION_DISABLED, dry_run=dry_run)

    actions: list[Action] = []
    retry_token = failure.new_version_token
    kept: str | None = None
    if current_moved:
        if not (policy.rollback_allowed and state.previous):
            restart = _restart(policy)
            return Plan(Resolution.NEEDS_HUMAN, Reason.CURRENT_MOVED, tuple(restart), dry_run=dry_run)
        moved = state.current
        actions.append(Action(ActionKind.ROLLBACK, version_id=moved, move_to=state.previous))
        actions.append(Action(ActionKind.REMOVE_PENDING, version_id=moved))
        actions.extend(_restart(policy))
        reason = Reason.ROLLED_BACK
    elif state.pending_dangles and failure.failed_step in REMOVE_STEPS:
        actions.append(Action(ActionKind.REMOVE_PENDING, version_id=state.pending))
        reason = Reason.STUCK_PENDING_CLEARED
    elif state.pending_dangles:
        kept = state.pending
        retry_token = str(state.pending)
        reason = Reason.PENDING_KEPT
    else:
        reason = Reason.NO_PENDING

    if budget.spent:
        return Plan(Resolution.NEEDS_HUMAN, Reason.BUDGET_EXHAUSTED, tuple(actions), dry_run=dry_run)
    delay_s = retry_delay_s(budget.used, jitter, policy.retry_base_s, policy.retry_cap_s)
    retry = Action(ActionKind.ROTATE, version_id=kept, token=retry_token, delay_s=delay_s)
    return Plan(Resolution.REMEDIATED, reason, tuple(actions), retry=retry, dry_run=dry_run)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """At retry time: rotate with `token`, or stop with `resolution` and `reason`."""

    resolution: Resolution
    reason: Reason
    token: str | None = None


def decide_retry(
    failure: Failure, state: SecretState, policy: Policy, budget: Budget, planned: Action
) -> RetryDecision:
    """Re-check a scheduled retry against fresh state: the world may have moved on since the plan."""
    if not state.exists or state.deleted_at is not None:
        return RetryDecision(Resolution.SKIPPED, Reason.SECRET_GONE)
    if policy.remediation is not SecretPolicy.AUTO or policy.mode is not Mode.APPLY:
        return RetryDecision(Resolution.SKIPPED, Reason.POLICY_OFF)  # the policy changed since the plan
    if _rotated_since(failure, state):
        return RetryDecision(Resolution.SKIPPED, Reason.ROTATED_SINCE)
    if not state.rotation_enabled:
        return RetryDecision(Resolution.NEEDS_HUMAN, Reason.ROTATION_DISABLED)
    if budget.spent:
        return RetryDecision(Resolution.NEEDS_HUMAN, Reason.BUDGET_EXHAUSTED)
    if state.pending_dangles:
        if planned.version_id is not None and state.pending == planned.version_id:
            return RetryDecision(Resolution.REMEDIATED, Reason.PENDING_KEPT, token=planned.version_id)
        # Someone else's rotation holds AWSPENDING now: its own outcome event will follow.
        return RetryDecision(Resolution.SKIPPED, Reason.ROTATION_IN_PROGRESS)
    return RetryDecision(Resolution.REMEDIATED, Reason.NO_PENDING, token=failure.new_version_token)


def still_needed(action: Action, state: SecretState) -> bool:
    """Whether an immediate action still has work to do on this state (a resumed plan skips what is done)."""
    if action.kind is ActionKind.REMOVE_PENDING:
        return state.pending is not None and state.pending == action.version_id
    if action.kind is ActionKind.ROLLBACK:
        return state.current == action.version_id and action.move_to is not None
    return True


def _restart(policy: Policy) -> list[Action]:
    if policy.restart_document is None:
        return []
    return [Action(ActionKind.RESTART_CONSUMERS, document=policy.restart_document)]


def _rotated_since(failure: Failure, state: SecretState) -> bool:
    return state.last_rotated_at is not None and state.last_rotated_at > failure.failed_at


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
