"""What to do about a failed rotation once Secrets Manager's own retries have settled: the decision table.

Pure: no I/O, no clock, no randomness (the caller passes the jitter). The README's "Remediation" section draws the
table; each row follows from how rotation runs (AWS-FACTS §2, the AWS rotation function templates):
- `createSecret` failed: the database never saw the pending version. Clear AWSPENDING, rotate again.
- `setSecret` failed: the database may hold the pending version (the step may have changed the password before
  failing). Set it aside under a held label of its own, clear AWSPENDING (RotateSecret refuses while it dangles),
  rotate again. Nothing that works is touched: AWSCURRENT stays where it is.
- `testSecret` failed: the database holds the pending version. Single-user: AWSCURRENT no longer works, the
  pending version does; promote it where the secret allows AWSCURRENT moves, else escalate with the command.
  Alternating users: AWSCURRENT still works; set the pending version aside and rotate again. Unknown: escalate.
- `finishSecret` failed before moving AWSCURRENT: the pending version passed its test and the database holds it:
  promote it where allowed (safe in either strategy), else set it aside and rotate (alternating users) or escalate.
- `finishSecret` failed after moving AWSCURRENT (AWSPENDING on AWSCURRENT): the rotation's work is done and the new
  credentials were tested. Nothing to repair — unless the history shows AWSCURRENT moved in this very rotation,
  nothing succeeded after it, the strategy is alternating users (the previous user's password is untouched) and
  the secret allows AWSCURRENT moves: then roll back. Never on the event's word alone.
- No AWSPENDING: nothing blocks RotateSecret; rotate again.
Before any of it: the secret gone, a later success or rotation, a manual new value, the secret's policy, or a
spent budget or attempt cap stand it down or escalate it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from daemon.remediation.advice import TAG_MOVE_CURRENT, advice_for
from daemon.remediation.state import Aftermath, Failure, SecretState, Strategy, held_label

TAG_REMEDIATION = "rotaudit:remediation"
TAG_ROLLBACK = "rotaudit:rollback"  # the older name of the AWSCURRENT-moves opt-in, still honoured
TAG_RESTART_DOCUMENT = "rotaudit:restart-document"
BUDGET_WINDOW_S = 24 * 3600
RETRY_BASE_S = 60.0
RETRY_CAP_S = 3600.0
# Names or ARNs of SSM documents (the API's own pattern, plus the ARN form for shared documents).
_DOCUMENT_RE = re.compile(r"^(?:arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:document/)?[A-Za-z0-9_.:/-]{3,128}$")


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
    MOVED_ON = "moved_on"  # a later rotation started: its own events tell how it went
    ABANDONED = "abandoned"  # a value was put by hand during the rotation
    POLICY_OFF = "policy_off"
    NOTIFY_ONLY = "notify_only"
    POLICY_UNRECOGNISED = "policy_unrecognised"
    ROTATION_DISABLED = "rotation_disabled"
    BUDGET_EXHAUSTED = "budget_exhausted"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    CURRENT_MOVED = "current_moved"  # finishSecret failed after its label move: the rotation's work is done
    STUCK_PENDING_CLEARED = "stuck_pending_cleared"
    PENDING_SET_ASIDE = "pending_set_aside"
    PENDING_PROMOTED = "pending_promoted"
    ROLLED_BACK = "rolled_back"
    NO_PENDING = "no_pending"
    MOVE_NOT_ALLOWED = "move_not_allowed"  # the fix is an AWSCURRENT move the secret does not allow
    STRATEGY_UNKNOWN = "strategy_unknown"  # the safe action depends on a strategy rotaudit cannot tell
    UNKNOWN_STEP = "unknown_step"
    ROTATION_IN_PROGRESS = "rotation_in_progress"
    ACTION_FAILED = "action_failed"
    AWS_ERROR = "aws_error"


class ActionKind(StrEnum):
    HOLD = "hold"  # attach rotaudit's held label to a version the database may hold
    REMOVE_PENDING = "remove_pending"
    PROMOTE = "promote"  # move AWSCURRENT to the pending version (what finishSecret does)
    ROLLBACK = "rollback"
    RESTART_CONSUMERS = "restart_consumers"
    ROTATE = "rotate"


@dataclass(frozen=True, slots=True)
class Policy:
    """Global mode plus the secret's own tags."""

    mode: Mode = Mode.APPLY
    remediation: SecretPolicy | None = SecretPolicy.AUTO  # None: a tag value we do not recognise
    move_current_allowed: bool = False
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
        allowed = any(tags.get(tag, "").strip().lower() == "allowed" for tag in (TAG_MOVE_CURRENT, TAG_ROLLBACK))
        return cls(
            mode=mode,
            remediation=remediation,
            move_current_allowed=allowed,
            restart_document=document if _DOCUMENT_RE.fullmatch(document) else None,
            retry_base_s=retry_base_s,
            retry_cap_s=retry_cap_s,
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """RotateSecret calls left for this secret (24 h window) and passes left for this claim."""

    limit: int
    used: int = 0
    attempts_left: int = 1

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


@dataclass(frozen=True, slots=True)
class Action:
    """One step: `version_id` (+ `move_to`, `label`) for label moves, `document` for a restart, `token` to rotate."""

    kind: ActionKind
    version_id: str | None = None
    move_to: str | None = None
    label: str | None = None
    document: str | None = None
    token: str | None = None
    delay_s: float = 0.0

    def to_item(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "action": self.kind.value,
            "version_id": self.version_id,
            "move_to": self.move_to,
            "label": self.label,
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
            label=item.get("label"),
            document=item.get("document"),
            token=item.get("token"),
            delay_s=float(item.get("delay_s", 0)),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Immediate actions (in order), an optional scheduled RotateSecret, the outcome, and what a human should know.

    `may_hold`: the versions whose credentials the database may accept now (the record the invariants need).
    `advice`: for a human, in version ids and commands; never a value.
    """

    resolution: Resolution
    reason: Reason
    actions: tuple[Action, ...] = ()
    retry: Action | None = None
    dry_run: bool = False
    may_hold: tuple[str, ...] = ()
    advice: str = ""

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "resolution": self.resolution.value,
            "reason": self.reason.value,
            "actions": [action.to_item() for action in self.actions],
            "dry_run": self.dry_run,
        }
        if self.retry:
            item["retry"] = self.retry.to_item()
        if self.may_hold:
            item["may_hold"] = list(self.may_hold)
        if self.advice:
            item["advice"] = self.advice
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Plan:
        retry = item.get("retry")
        return cls(
            resolution=Resolution(item["resolution"]),
            reason=Reason(item["reason"]),
            actions=tuple(Action.from_item(a) for a in item.get("actions", [])),
            retry=Action.from_item(retry) if retry else None,
            dry_run=bool(item.get("dry_run")),
            may_hold=tuple(item.get("may_hold", ())),
            advice=str(item.get("advice", "")),
        )


def retry_delay_s(attempts_used: int, jitter: float, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random (`jitter` in [0, 1))."""
    step = min(cap_s, base_s * float(2 ** min(attempts_used, 30)))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)


def stand_down(failure: Failure, state: SecretState, aftermath: Aftermath, policy: Policy) -> Plan | None:
    """The checks before the table: a plan that changes nothing, or None to go on to the table."""
    dry_run = policy.mode is Mode.DRY_RUN
    if state.gone:
        return Plan(Resolution.SKIPPED, Reason.SECRET_GONE, dry_run=dry_run)
    if aftermath.succeeded_after or (state.last_rotated_at is not None and state.last_rotated_at > failure.failed_at):
        return Plan(Resolution.SKIPPED, Reason.ROTATED_SINCE, dry_run=dry_run)
    if aftermath.later_rotation_started:
        return Plan(Resolution.SKIPPED, Reason.MOVED_ON, dry_run=dry_run)
    if aftermath.abandoned_after:
        return Plan(Resolution.SKIPPED, Reason.ABANDONED, dry_run=dry_run)
    if policy.remediation is SecretPolicy.OFF:
        return Plan(Resolution.SKIPPED, Reason.POLICY_OFF, dry_run=dry_run)
    if policy.remediation is None:
        return Plan(Resolution.NEEDS_HUMAN, Reason.POLICY_UNRECOGNISED, dry_run=dry_run)
    if policy.remediation is SecretPolicy.NOTIFY_ONLY:
        return Plan(Resolution.NEEDS_HUMAN, Reason.NOTIFY_ONLY, dry_run=dry_run)
    return None


def plan_remediation(
    failure: Failure, state: SecretState, aftermath: Aftermath, policy: Policy, budget: Budget, *, jitter: float
) -> Plan:
    """The plan for one failed rotation whose retries have settled, from real state and history (module doc)."""
    plan = stand_down(failure, state, aftermath, policy) or _table(failure, state, aftermath, policy)
    if plan.retry is not None:
        plan = _gate_retry(plan, state, policy, budget, jitter)
    if plan.resolution is Resolution.NEEDS_HUMAN and not plan.advice:
        plan = replace(plan, advice=advice_for(plan.reason.value, failure.secret_arn, state.current, state.pending))
    return replace(plan, dry_run=policy.mode is Mode.DRY_RUN)


def _table(failure: Failure, state: SecretState, aftermath: Aftermath, policy: Policy) -> Plan:
    step, strategy = failure.failed_step, state.strategy
    current, pending = state.current, state.pending
    if pending is None or (state.pending_on_current and step != "finishSecret"):
        # Nothing blocks RotateSecret. (AWSPENDING on AWSCURRENT after another step is an earlier success's label.)
        return _rotate(Reason.NO_PENDING, may_hold=_known(current))
    if state.pending_on_current:  # finishSecret failed after its label move
        moved_here = current in aftermath.current_moved_to
        if moved_here and strategy is Strategy.ALTERNATING_USERS and policy.move_current_allowed and state.previous:
            actions = (
                Action(ActionKind.ROLLBACK, version_id=current, move_to=state.previous),
                *_set_aside(current),
                *_restart(policy),
            )
            return Plan(Resolution.REMEDIATED, Reason.ROLLED_BACK, actions, may_hold=_known(state.previous, current))
        return Plan(Resolution.SKIPPED, Reason.CURRENT_MOVED, may_hold=_known(current))
    # AWSPENDING dangles on its own version.
    if step == "createSecret":  # the database never saw the pending version
        remove = Action(ActionKind.REMOVE_PENDING, version_id=pending)
        return _rotate(Reason.STUCK_PENDING_CLEARED, (remove,), may_hold=_known(current))
    both = _known(current, pending)
    if step == "setSecret":
        return _rotate(Reason.PENDING_SET_ASIDE, _set_aside(pending), may_hold=both)
    if step == "testSecret":
        if strategy is Strategy.ALTERNATING_USERS:
            return _rotate(Reason.PENDING_SET_ASIDE, _set_aside(pending), may_hold=both)
        if strategy is Strategy.SINGLE_USER:
            return _promote(state, policy, may_hold=_known(pending))
        return Plan(Resolution.NEEDS_HUMAN, Reason.STRATEGY_UNKNOWN, may_hold=both)
    if step == "finishSecret":  # tested: the pending version works in either strategy
        if policy.move_current_allowed or strategy is not Strategy.ALTERNATING_USERS:
            return _promote(state, policy, may_hold=both if strategy is Strategy.ALTERNATING_USERS else _known(pending))
        return _rotate(Reason.PENDING_SET_ASIDE, _set_aside(pending), may_hold=both)
    return Plan(Resolution.NEEDS_HUMAN, Reason.UNKNOWN_STEP, may_hold=both)


def _rotate(reason: Reason, actions: tuple[Action, ...] = (), *, may_hold: tuple[str, ...]) -> Plan:
    return Plan(Resolution.REMEDIATED, reason, actions, retry=Action(ActionKind.ROTATE), may_hold=may_hold)


def _promote(state: SecretState, policy: Policy, *, may_hold: tuple[str, ...]) -> Plan:
    if not policy.move_current_allowed:
        return Plan(Resolution.NEEDS_HUMAN, Reason.MOVE_NOT_ALLOWED, may_hold=may_hold)
    actions = (Action(ActionKind.PROMOTE, version_id=state.current, move_to=state.pending), *_restart(policy))
    return Plan(Resolution.REMEDIATED, Reason.PENDING_PROMOTED, actions, may_hold=may_hold)


def _set_aside(version_id: str | None) -> tuple[Action, ...]:
    """Keep a version the database may hold reachable, then free AWSPENDING for the next rotation."""
    if version_id is None:
        return ()
    return (
        Action(ActionKind.HOLD, version_id=version_id, label=held_label(version_id)),
        Action(ActionKind.REMOVE_PENDING, version_id=version_id),
    )


def _gate_retry(plan: Plan, state: SecretState, policy: Policy, budget: Budget, jitter: float) -> Plan:
    """A plan that rotates again needs rotation enabled, budget and attempts left; else it escalates unchanged."""
    if not state.rotation_enabled:
        return replace(plan, resolution=Resolution.NEEDS_HUMAN, reason=Reason.ROTATION_DISABLED, actions=(), retry=None)
    if budget.attempts_left <= 0:
        return replace(
            plan, resolution=Resolution.NEEDS_HUMAN, reason=Reason.ATTEMPTS_EXHAUSTED, actions=(), retry=None
        )
    if budget.spent:
        return replace(plan, resolution=Resolution.NEEDS_HUMAN, reason=Reason.BUDGET_EXHAUSTED, actions=(), retry=None)
    delay_s = retry_delay_s(budget.used, jitter, policy.retry_base_s, policy.retry_cap_s)
    return replace(plan, retry=Action(ActionKind.ROTATE, delay_s=delay_s))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """At retry time: rotate with `token`, or stop with `resolution` and `reason`."""

    resolution: Resolution
    reason: Reason
    token: str | None = None


def decide_retry(
    failure: Failure, state: SecretState, aftermath: Aftermath, policy: Policy, budget: Budget
) -> RetryDecision:
    """Re-check a scheduled RotateSecret against fresh state: the world may have moved on since the plan.

    Never calls RotateSecret where AWS would refuse it: AWSPENDING dangling means a rotation is in progress (its
    own outcome event will follow).
    """
    if policy.mode is not Mode.APPLY or policy.remediation is not SecretPolicy.AUTO:
        return RetryDecision(Resolution.SKIPPED, Reason.POLICY_OFF)  # the policy changed since the plan
    stood_down = stand_down(failure, state, aftermath, policy)
    if stood_down is not None:
        return RetryDecision(stood_down.resolution, stood_down.reason)
    if not state.rotation_enabled:
        return RetryDecision(Resolution.NEEDS_HUMAN, Reason.ROTATION_DISABLED)
    if state.pending_dangles:
        return RetryDecision(Resolution.SKIPPED, Reason.ROTATION_IN_PROGRESS)
    if budget.spent:
        return RetryDecision(Resolution.NEEDS_HUMAN, Reason.BUDGET_EXHAUSTED)
    return RetryDecision(Resolution.REMEDIATED, Reason.NO_PENDING, token=failure.new_version_token)


def still_needed(action: Action, state: SecretState) -> bool:
    """Whether an immediate action still has work to do on this state (a resumed plan skips what is done)."""
    if action.kind is ActionKind.REMOVE_PENDING:
        return state.pending is not None and state.pending == action.version_id
    if action.kind is ActionKind.HOLD:
        return action.label is not None and action.label not in state.stages.get(action.version_id or "", ())
    if action.kind in (ActionKind.ROLLBACK, ActionKind.PROMOTE):
        return state.current == action.version_id and action.move_to is not None
    return True


def _restart(policy: Policy) -> list[Action]:
    if policy.restart_document is None:
        return []
    return [Action(ActionKind.RESTART_CONSUMERS, document=policy.restart_document)]


def _known(*versions: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in versions if v))
