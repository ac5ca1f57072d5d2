"""Applies remediation plans: the event hook for failed and succeeded rotations, and the passes over one claim.

`Remediator.on_event` is the hook (`async (event, outcome) -> None`). A `RotationFailed` only records a settling
claim: Secrets Manager retries a failed rotation itself, so rotaudit decides nothing until the failure has gone
`settle` without another record (a repeat pushes the time on). A `RotationSucceeded` closes the secret's open
failures. Every other event — including the label moves and `RotationStarted` records rotaudit's own actions
cause — is ignored, and RotateSecret calls are bounded by a per-secret budget, so rotaudit cannot feed on itself.

When a claim falls due, `RetryJob` (on every replica) takes it over and this module runs one pass: read the secret
and its history (`world`), plan (`plan`), apply, save, then notify. The notification is saved with the claim first
(an outbox) and sent after, so a failed publish never blocks the retry schedule. A pass that fails on AWS errors
is retried with backoff; after `max_passes` it escalates once. Collaborators are injected (`build`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.audit import Outcome
from daemon.aws import explain
from daemon.config import Config
from daemon.errors import AwsError, ClaimLost, PermanentAwsError, TransientAwsError
from daemon.events import RotationEvent
from daemon.logs import get_logger
from daemon.remediation.budget import AttemptLedger
from daemon.remediation.claims import Claim, ClaimStore
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.notify import Notification, Notifier, outbox_for
from daemon.remediation.outcome import (
    ACTING,
    DRY_RUN,
    RETRY_DUE,
    ROTATED,
    SETTLING,
    Kind,
    first_pass_outcome,
)
from daemon.remediation.plan import (
    RETRY_BASE_S,
    RETRY_CAP_S,
    Action,
    ActionKind,
    Budget,
    Mode,
    Plan,
    Policy,
    Reason,
    Resolution,
    decide_retry,
    plan_remediation,
    still_needed,
)
from daemon.remediation.recovery import Recovery
from daemon.remediation.state import Failure, SecretState
from daemon.remediation.world import World
from daemon.table import utc_iso
from daemon.timer import Clock, utc_now

FAILED, SUCCEEDED = "RotationFailed", "RotationSucceeded"
PASS_BACKOFF_S = 60.0  # after a pass failed on AWS errors: 60 s, then doubling, up to RETRY_CAP_S
OUTBOX_RETRY_S = 60.0  # a notification whose publish failed is sent again this much later
# Reasons that mean the failure needs nothing more: it closes (no "recovered" notice will come for it).
_CLOSES = frozenset(
    {Reason.SECRET_GONE, Reason.POLICY_OFF, Reason.ROTATED_SINCE, Reason.ABANDONED, Reason.PENDING_PROMOTED}
    | {Reason.ROLLED_BACK, Reason.CURRENT_MOVED}
)
_FINISHED = {  # stage -> the log event that ends a first pass
    RETRY_DUE: "remediation.retry_scheduled",
    Resolution.REMEDIATED.value: "remediation.applied",
    Resolution.NEEDS_HUMAN.value: "remediation.escalated",
    Resolution.SKIPPED.value: "remediation.skipped",
    DRY_RUN: "remediation.dry_run_planned",
}


class Remediator:
    """One replica's remediation: claims, plans, applies, schedules retries, notifies."""

    def __init__(
        self,
        world: World,
        config: Config,
        *,
        claims: ClaimStore,
        attempts: AttemptLedger,
        notifier: Notifier,
        metrics: RemediationMetrics,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
    ) -> None:
        self.world = world
        self.mode = Mode(config.remediation_mode)
        self.budget_limit = config.remediation_budget
        self.settle = timedelta(seconds=config.remediation_settle_s)
        self.max_passes = config.remediation_max_passes
        self.allowed = (config.allowed_accounts, config.allowed_regions)
        self.claims = claims
        self.attempts = attempts
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.retry = {"retry_base_s": retry_base_s, "retry_cap_s": retry_cap_s}
        self.log = get_logger("remediation")
        self.recovery = Recovery(world, claims, notifier, metrics)

    # --- entry points ---------------------------------------------------------------------------------------
    async def on_event(self, event: RotationEvent, outcome: Outcome) -> None:
        """The event hook. Raises TransientAwsError to have the message redelivered."""
        del outcome  # duplicates run too: a redelivery finishes what a crashed delivery started
        if self.mode is Mode.OFF or event.event_name not in (FAILED, SUCCEEDED):
            return
        try:
            if not await self.world.trusted(event, *self.allowed):
                self.metrics.remediations.labels("none", "untrusted").inc()
                self.log.warning(
                    "remediation.untrusted_event", account=event.account, region=event.region, **_ids(event)
                )
            elif event.event_name == FAILED:
                await self._settle(event)
            else:
                await self.recovery.on_success(event)
        except PermanentAwsError as exc:
            # Not worth a redelivery; a claim left behind is taken over by the job once it is due.
            self.log.error("remediation.failed", error=str(exc), **_ids(event))

    async def resume(self, wake: dict[str, Any]) -> None:
        """Take over a due claim (settled, a scheduled retry, an outbox, a dead holder's work) and carry it on."""
        claim = await self.claims.acquire_due(wake["secret_arn"], wake["rotation_id"])
        if claim is None:
            await self.claims.drop_wake(wake)
            return
        await self._drive(claim)

    async def _settle(self, event: RotationEvent) -> None:
        """Record the failure to decide on once Secrets Manager's own retries have had `settle` (by event time)."""
        failure = Failure.from_event(event)
        until = failure.failed_at + self.settle
        recorded = await self.claims.settle(failure, until)
        self.log.info(
            "remediation.settling" if recorded else "remediation.duplicate", until=utc_iso(until), **_ids(event)
        )
        if until <= self.clock():  # no settle time (or a late delivery): decide now
            claim = await self.claims.acquire_due(failure.secret_arn, failure.rotation_id)
            if claim is not None:
                await self._drive(claim)

    # --- one pass over a claim ------------------------------------------------------------------------------
    async def _drive(self, claim: Claim) -> None:
        """One pass over a claim this replica holds."""
        started = time.monotonic()
        self.log.info("remediation.claimed", fence=claim.fence, stage=claim.stage, **_failure_ids(claim.failure))
        try:
            await self._flush(claim, keep_lease=True)  # a notification a failed publish left behind goes first
            if claim.stage in (SETTLING, ACTING):
                await self._remediate(claim)
            elif claim.stage == RETRY_DUE and _at(claim.item.get("retry_at")) <= self.clock():
                await self._retry(claim)
            else:  # woken for its outbox before its retry, or finished but still woken: set the next wake-up
                await self.claims.save(claim, {}, due_at=self._next_due(claim))
        except ClaimLost as exc:
            self.metrics.remediations.labels("none", "claim_lost").inc()
            self.log.warning("remediation.claim_lost", error=str(exc), **_failure_ids(claim.failure))
        except AwsError as exc:
            await self._failed_pass(claim, exc)
        finally:
            self.metrics.seconds.observe(time.monotonic() - started)

    async def _remediate(self, claim: Claim) -> None:
        failure = claim.failure
        state = await self.world.describe(failure.secret_arn)
        if "plan" in claim.item:  # taken over: the plan stands, and each action checks what is left to do
            plan = Plan.from_item(claim.item["plan"])
            if self.mode is not Mode.APPLY:  # switched to dry-run since: change nothing more
                plan = dataclasses.replace(plan, dry_run=True)
        else:
            aftermath = await self.world.aftermath(failure)
            used = await self.attempts.used(failure.secret_arn)
            left = self.max_passes - int(claim.item.get("failed_passes", 0))
            policy = Policy.for_secret(self.mode, state.tags, **self.retry)
            budget = Budget(self.budget_limit, used, attempts_left=left)
            plan = plan_remediation(failure, state, aftermath, policy, budget, jitter=self.rng.random())
            await self.claims.check(
                claim, stage=ACTING, plan=plan.to_item(), diagnosis=state.diagnosis(), dry_run=plan.dry_run
            )
        self.log.info(
            "remediation.planned",
            resolution=plan.resolution.value,
            reason=plan.reason.value,
            actions=[a.kind.value for a in plan.actions],
            retry=plan.retry is not None,
            dry_run=plan.dry_run,
            **_failure_ids(failure),
        )
        # A pass that takes over keeps the earlier passes' results: the audit item shows every attempt.
        results: list[dict[str, Any]] = list(claim.item.get("results", []))
        failed = False
        for action in plan.actions:
            entry = await self._apply(claim, action, state, results, dry_run=plan.dry_run)
            results.append(entry)
            if failed := entry["result"] == "failed":
                break  # never a later step (removing AWSPENDING) after a failed one (holding the version)
        outcome = first_pass_outcome(plan, action_failed=failed)
        stage, reason = outcome.stage, outcome.reason.value
        if outcome.metric is not None:
            self.metrics.remediations.labels(*outcome.metric).inc()
        fields: dict[str, Any] = {
            "stage": stage,
            "reason": reason,
            "results": results,
            "is_open": outcome.is_open and outcome.reason not in _CLOSES,
        }
        fields.update({k: v for k, v in (("advice", plan.advice), ("may_hold", list(plan.may_hold))) if v})
        retry_at = None
        if outcome.schedules_retry and plan.retry is not None:
            retry_at = self.clock() + timedelta(seconds=plan.retry.delay_s)
            fields["retry_at"] = utc_iso(retry_at)
        if outcome.notify is not None:
            details = {"outcome": stage, "reason": reason, "actions": results, "retry_at": fields.get("retry_at")}
            fields["outbox"] = outbox_for(outcome.notify, failure, {**details, "advice": plan.advice}, state)
        await self._save(claim, fields, retry_at)
        self.log.info(_FINISHED[stage], reason=reason, retry_at=fields.get("retry_at"), **_failure_ids(failure))

    async def _retry(self, claim: Claim) -> None:
        failure = claim.failure
        state = await self.world.describe(failure.secret_arn)
        token = claim.item.get("attempted_token")
        if token is not None:  # a holder that died had recorded the attempt: repeat that very call
            resolution, reason = Resolution.REMEDIATED, Reason.NO_PENDING
        else:
            aftermath = await self.world.aftermath(failure)
            used = await self.attempts.used(failure.secret_arn)
            policy = Policy.for_secret(self.mode, state.tags, **self.retry)
            decision = decide_retry(failure, state, aftermath, policy, Budget(self.budget_limit, used))
            resolution, reason, token = decision.resolution, decision.reason, decision.token
        entry: dict[str, Any] = {"action": ActionKind.ROTATE.value, "at": utc_iso(self.clock()), "reason": reason.value}
        if token is None:
            entry["result"] = "cancelled"
        else:
            entry.update(await self._rotate(claim, token))
            if entry["result"] == "failed":
                resolution, reason = Resolution.NEEDS_HUMAN, Reason.ACTION_FAILED
            elif entry["result"] == "cancelled":
                resolution, reason = Resolution.NEEDS_HUMAN, Reason.BUDGET_EXHAUSTED
        self.metrics.remediations.labels(ActionKind.ROTATE.value, entry["result"]).inc()
        results = [*claim.item.get("results", []), entry]
        # A retry made waits for its own rotation's events: a RotationSucceeded closes the failure as recovered,
        # a RotationFailed is a new failure with a claim of its own. One not needed closes or stays open by reason.
        fields: dict[str, Any] = {
            "stage": ROTATED if entry["result"] == "applied" else resolution.value,
            "reason": claim.item.get("reason", reason.value) if entry["result"] == "applied" else reason.value,
            "results": results,
            "is_open": reason not in _CLOSES,
        }
        if resolution is Resolution.NEEDS_HUMAN:
            self.metrics.remediations.labels("escalate", "applied").inc()
            details = {"outcome": resolution.value, "reason": reason.value, "actions": results}
            fields["outbox"] = outbox_for(Kind.NEEDS_HUMAN, failure, details, state)
        await self._save(claim, fields, None)
        self.log.info("remediation.retried", result=entry["result"], reason=reason.value, **_failure_ids(failure))

    async def _rotate(self, claim: Claim, token: str) -> dict[str, Any]:
        """RotateSecret with a deterministic token, once a budget slot is taken; the result entry's fields."""
        await self.claims.check(claim, attempted_token=token)
        if not await self.attempts.take(claim.failure, token, self.budget_limit):
            return {"token": token, "result": "cancelled", "error": Reason.BUDGET_EXHAUSTED.value}
        try:
            await self.world.rotate(claim.failure.secret_arn, token)
        except PermanentAwsError as exc:
            return {"token": token, "result": "failed", "error": exc.code}
        return {"token": token, "result": "applied"}

    async def _apply(
        self, claim: Claim, action: Action, state: SecretState, results: list[dict[str, Any]], *, dry_run: bool
    ) -> dict[str, Any]:
        """Carry out one immediate action (idempotently); its result for the audit item."""
        entry: dict[str, Any] = {**action.to_item(), "at": utc_iso(self.clock())}
        arn = claim.failure.secret_arn
        if dry_run:
            entry["result"] = "dry_run"
        elif not still_needed(action, state):
            entry["result"] = "already_done"
        else:
            await self.claims.check(claim, results=results[-20:])
            try:
                entry.update(await self.world.carry_out(arn, action, restart_token=claim.failure.restart_token))
                entry["result"] = "applied"
            except PermanentAwsError as exc:
                # A label move retried after a lost response finds its own work done (AWS then refuses the move):
                # only the secret's state says whether the action failed.
                moved = action.kind not in (ActionKind.RESTART_CONSUMERS, ActionKind.ROTATE)
                if moved and not still_needed(action, await self.world.describe(arn)):
                    entry["result"] = "applied"
                else:
                    entry.update(result="failed", error=exc.code)
        self.metrics.remediations.labels(action.kind.value, entry["result"]).inc()
        self.log.info("remediation.action_applied", **entry, **_failure_ids(claim.failure))
        return entry

    # --- saving, notifying, failing ---------------------------------------------------------------------------
    async def _save(self, claim: Claim, fields: dict[str, Any], retry_at: datetime | None) -> None:
        """Save the pass with its outbox while still holding the claim, publish, then set the next wake-up: a failed
        publish delays only the notice, never the retry schedule."""
        if "results_dropped" in claim.item:
            fields["results_dropped"] = claim.item["results_dropped"]
        if retry_at is not None:
            fields["retry_at"] = utc_iso(retry_at)
        if fields.get("outbox") and "due_at_ms" in claim.item:
            await self.claims.save(claim, fields, due_at=_ms_time(claim.item["due_at_ms"]))
            await self._flush(claim, keep_lease=True)
            fields = {}
        await self.claims.save(claim, fields, due_at=self._next_due(claim))

    async def _flush(self, claim: Claim, *, keep_lease: bool = False) -> None:
        """Publish the claim's outbox, if any, and clear it; a failed publish is logged and left for the job.

        `keep_lease`: the pass goes on after this, so the claim stays held until its own save."""
        box = claim.item.get("outbox")
        if not box:
            return
        await self.claims.check(claim)
        failure = claim.failure
        notification = Notification(
            Kind(box["kind"]), failure.secret_arn, failure.secret_name, failure.rotation_id, box["details"]
        )
        try:
            await self.notifier.send(notification, claimed=True)
        except AwsError as exc:
            self.log.warning("remediation.notify_failed", error=str(exc), **_failure_ids(failure))
            return
        lease = _ms_time(claim.item["due_at_ms"]) if keep_lease and "due_at_ms" in claim.item else None
        await self.claims.save(claim, {"outbox": None}, due_at=lease or self._next_due(claim, outbox_done=True))

    def _next_due(self, claim: Claim, *, outbox_done: bool = False) -> datetime | None:
        """When the claim needs attention next: the sooner of its scheduled retry and its unsent outbox, or never."""
        times = []
        if claim.item.get("outbox") and not outbox_done:
            times.append(self.clock() + timedelta(seconds=OUTBOX_RETRY_S))
        if claim.stage == RETRY_DUE and claim.item.get("retry_at"):
            times.append(_at(claim.item["retry_at"]))
        return min(times, default=None)

    async def _failed_pass(self, claim: Claim, exc: AwsError) -> None:
        """A pass failed on AWS: try again later with backoff; after `max_passes`, escalate once and stop."""
        passes = int(claim.item.get("failed_passes", 0)) + 1
        self.log.warning("remediation.pass_failed", error=str(exc), passes=passes, **_failure_ids(claim.failure))
        fields: dict[str, Any] = {"failed_passes": passes, "error": exc.code}
        due: datetime | None
        if passes >= self.max_passes:
            self.metrics.remediations.labels("escalate", "applied").inc()
            advice = explain(exc, f"{exc.service}.{exc.operation}", "see the error code")
            details = {"outcome": Resolution.NEEDS_HUMAN.value, "reason": Reason.AWS_ERROR.value, "advice": advice}
            outbox = outbox_for(Kind.NEEDS_HUMAN, claim.failure, details, None)
            fields.update(
                stage=Resolution.NEEDS_HUMAN.value, reason=Reason.AWS_ERROR.value, advice=advice, outbox=outbox
            )
            due = self.clock() + timedelta(seconds=OUTBOX_RETRY_S)
        else:
            due = self.clock() + timedelta(seconds=min(RETRY_CAP_S, PASS_BACKOFF_S * 2 ** (passes - 1)))
        try:
            await self.claims.save(claim, fields, due_at=due)
        except (AwsError, ClaimLost):
            if isinstance(exc, TransientAwsError):
                raise exc from None  # nothing recorded: have the event redelivered
            return
        with contextlib.suppress(AwsError, ClaimLost):
            await self._flush(claim)


def _ms_time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _at(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _failure_ids(failure: Failure) -> dict[str, str]:
    return {"secret_name": failure.secret_name, "rotation_id": failure.rotation_id}


def _ids(event: RotationEvent) -> dict[str, str]:
    return {"event_name": event.event_name, "secret_name": event.secret_name, "rotation_id": event.rotation_id}
