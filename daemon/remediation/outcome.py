"""How a first remediation pass ends: a pure table from the plan and its actions to stage, notification and metric.

No I/O. `first_pass_outcome(plan, action_failed=...)` says what `Remediator` saves, sends and counts once a plan's
immediate actions have run:

- a dry run is stage `dry_run` with a `planned` notification, whatever the plan;
- an action that failed turns the plan into `needs_human` (reason `action_failed`) and cancels its retry;
- `skipped` closes the failure quietly; `needs_human` escalates; `remediated` waits in `retry_due` for its
  scheduled RotateSecret (or is `remediated` when the plan has none): only a remediated plan schedules one;
- the metric counts the escalation, the skip or the scheduled rotation (`dry_run` in a dry run).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from daemon.remediation.plan import ActionKind, Plan, Reason, Resolution

# A claim's stage (the audit item's `stage`, `rotaudit history`'s status), besides the resolutions' own values.
SETTLING = "settling"  # waiting out Secrets Manager's own retries before deciding anything
ACTING = "acting"  # a pass is under way
RETRY_DUE = "retry_due"  # waiting for its scheduled RotateSecret
DRY_RUN = "dry_run"  # planned only: nothing was changed
RECOVERED = "recovered"  # closed by a later RotationSucceeded
ROTATED = "rotated"  # rotaudit's RotateSecret started a new rotation: its own events tell the rest


class Kind(StrEnum):
    """What a notification says (closed set: a metric label and the `event` attribute)."""

    REMEDIATED = "remediated"
    NEEDS_HUMAN = "needs_human"
    RECOVERED = "recovered"
    PLANNED = "planned"  # dry-run: what remediation would have done


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """What a first pass leaves: the claim's fields, the notification to send, the step to count."""

    resolution: Resolution
    reason: Reason
    stage: str
    notify: Kind | None  # None: no notification
    metric: tuple[str, str] | None  # (action, outcome) labels of rotaudit_remediations_total; None: not counted
    schedules_retry: bool  # stage `retry_due`: the plan's RotateSecret is due later; save `retry_at` and a wake-up

    @property
    def is_open(self) -> bool:
        """Whether the failure stays open (a later RotationSucceeded closes it as recovered)."""
        return self.resolution is not Resolution.SKIPPED


def first_pass_outcome(plan: Plan, *, action_failed: bool) -> PassOutcome:
    """The outcome of a pass that ran `plan`'s immediate actions; `action_failed` when one of them failed."""
    resolution = Resolution.NEEDS_HUMAN if action_failed else plan.resolution
    reason = Reason.ACTION_FAILED if action_failed else plan.reason
    notify: Kind | None
    if plan.dry_run:
        stage, notify = DRY_RUN, Kind.PLANNED
    elif resolution is Resolution.SKIPPED:
        stage, notify = resolution.value, None
    elif resolution is Resolution.NEEDS_HUMAN:
        stage, notify = resolution.value, Kind.NEEDS_HUMAN
    else:
        stage, notify = (RETRY_DUE if plan.retry is not None else resolution.value), Kind.REMEDIATED
    metric: tuple[str, str] | None = None
    if resolution is Resolution.NEEDS_HUMAN:
        metric = ("escalate", "dry_run" if plan.dry_run else "applied")
    elif resolution is Resolution.SKIPPED:
        metric = ("none", "skipped")
    elif plan.retry is not None:
        metric = (ActionKind.ROTATE.value, "dry_run" if plan.dry_run else "scheduled")
    return PassOutcome(resolution, reason, stage, notify, metric, schedules_retry=stage == RETRY_DUE)
