"""Applies remediation plans: the event hook for failed and succeeded rotations, and the passes over one claim.

`Remediator.on_event` is the hook (`async (event, outcome) -> None`). It acts only on `RotationFailed` (remediate)
and `RotationSucceeded` (close open failures of the secret and say "recovered"); every other event — the label
moves and `RotationStarted`/`RotateSecret` records our own actions cause included — is ignored, and retries are
bounded by a per-secret budget, so rotaudit cannot feed on its own events. It raises `TransientAwsError` when
the message should be redelivered.

Retries are scheduled durably, not slept on: the claim records the retry time and a wake-up item
(`daemon.remediation.claims`), and `RetryJob` (`daemon.remediation.job`, on every replica) takes due claims over
and calls `RotateSecret` with a deterministic `ClientRequestToken`. The same path takes over claims whose holder
died. What a first pass saves, sends and counts comes from the pure `daemon.remediation.outcome`; the claim
store, attempt ledger, notifier and metrics are injected (`daemon.remediation.build` makes them from `Config`).
"""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import timedelta
from typing import Any

from daemon.audit import Outcome
from daemon.aws import Aws
from daemon.config import Config
from daemon.errors import AwsError, ClaimLost, PermanentAwsError
from daemon.events import RotationEvent, parse_secret_arn
from daemon.logs import get_logger
from daemon.remediation.budget import AttemptLedger
from daemon.remediation.claims import Claim, ClaimStore
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.notify import Notification, Notifier
from daemon.remediation.outcome import ACTING, DRY_RUN, RECOVERED, RETRY_DUE, Kind, first_pass_outcome
from daemon.remediation.plan import (
    RETRY_BASE_S,
    RETRY_CAP_S,
    Action,
    ActionKind,
    Budget,
    Failure,
    Mode,
    Plan,
    Policy,
    Reason,
    Resolution,
    SecretState,
    decide_retry,
    plan_remediation,
    still_needed,
)
from daemon.table import utc_iso
from daemon.timer import Clock, utc_now

FAILED, SUCCEEDED = "RotationFailed", "RotationSucceeded"
# After a failed pass from the job, wait this long before the job tries that claim again (a redelivered event
# may still take it over at once).
RESUME_BACKOFF_S = 60.0
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
        aws: Aws,
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
        self.aws = aws
        self.mode = Mode(config.remediation_mode)
        self.budget_limit = config.remediation_budget
        self.allowed_accounts = config.allowed_accounts
        self.allowed_regions = config.allowed_regions
        self.claims = claims
        self.attempts = attempts
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.retry = {"retry_base_s": retry_base_s, "retry_cap_s": retry_cap_s}
        self.log = get_logger("remediation")
        self._account: str | None = None

    # --- entry points ---------------------------------------------------------------------------------------
    async def on_event(self, event: RotationEvent, outcome: Outcome) -> None:
        """The event hook. Raises TransientAwsError to have the message redelivered."""
        del outcome  # duplicates run too: a redelivery finishes what a crashed delivery started
        if self.mode is Mode.OFF or event.event_name not in (FAILED, SUCCEEDED):
            return
        try:
            if not await self._trusted(event):
                self.metrics.remediations.labels("none", "untrusted").inc()
                self.log.warning(
                    "remediation.untrusted_event", account=event.account, region=event.region, **_ids(event)
                )
            elif event.event_name == FAILED:
                claim = await self.claims.acquire(Failure.from_event(event))
                if claim is None:
                    self.log.info("remediation.duplicate", **_ids(event))
                    return
                await self._drive(claim)
            else:
                await self._recover(event)
        except PermanentAwsError as exc:
            # Not worth a redelivery; a claim left behind is taken over by the job once its lease runs out.
            self.log.error("remediation.failed", error=str(exc), **_ids(event))

    async def resume(self, wake: dict[str, Any]) -> None:
        """Take over a due claim (a scheduled retry, or a dead holder's work) and carry it on."""
        claim = await self.claims.acquire_due(wake["secret_arn"], wake["rotation_id"])
        if claim is None:
            await self.claims.drop_wake(wake)
            return
        await self._drive(claim, release_delay_s=RESUME_BACKOFF_S)

    # --- one pass over a claim ------------------------------------------------------------------------------
    async def _drive(self, claim: Claim, *, release_delay_s: float = 0.0) -> None:
        """One pass over a claim this replica holds: the first remediation, or its due retry."""
        started = time.monotonic()
        self.log.info("remediation.claimed", fence=claim.fence, stage=claim.stage, **_failure_ids(claim.failure))
        try:
            if claim.stage == RETRY_DUE:
                await self._retry(claim)
            elif claim.stage == ACTING:
                await self._remediate(claim)
            else:  # finished but still woken (a crash between saving and clearing): just clear it
                await self.claims.save(claim, {}, due_at=None)
        except ClaimLost as exc:
            self.metrics.remediations.labels("none", "claim_lost").inc()
            self.log.warning("remediation.claim_lost", error=str(exc), **_failure_ids(claim.failure))
        except AwsError:
            await self.claims.release(claim, delay_s=release_delay_s)
            raise
        finally:
            self.metrics.seconds.observe(time.monotonic() - started)

    async def _remediate(self, claim: Claim) -> None:
        failure = claim.failure
        state = await self._describe(failure.secret_arn)
        if "plan" in claim.item:  # taken over: the plan stands, and each action checks what is left to do
            plan = Plan.from_item(claim.item["plan"])
            if self.mode is not Mode.APPLY:  # switched to dry-run since: change nothing more
                plan = dataclasses.replace(plan, dry_run=True)
        else:
            used = await self.attempts.used(failure.secret_arn)
            policy = Policy.for_secret(self.mode, state.tags, **self.retry)
            plan = plan_remediation(failure, state, policy, Budget(self.budget_limit, used), jitter=self.rng.random())
            await self.claims.check(claim, plan=plan.to_item(), diagnosis=state.diagnosis(), dry_run=plan.dry_run)
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
        results: list[dict[str, Any]] = claim.item.setdefault("results", [])
        failed = False
        for action in plan.actions:
            entry = await self._apply(claim, action, state, dry_run=plan.dry_run)
            results.append(entry)
            if failed := entry["result"] == "failed":
                break
        outcome = first_pass_outcome(plan, action_failed=failed)
        stage, reason = outcome.stage, outcome.reason.value
        if outcome.metric is not None:
            self.metrics.remediations.labels(*outcome.metric).inc()
        fields: dict[str, Any] = {"stage": stage, "reason": reason, "results": results, "is_open": outcome.is_open}
        retry_at = None
        if outcome.schedules_retry and plan.retry is not None:
            retry_at = self.clock() + timedelta(seconds=plan.retry.delay_s)
            fields["retry_at"] = utc_iso(retry_at)
        if outcome.notify is not None:
            await self.claims.check(claim)
            details = {"outcome": stage, "reason": reason, "actions": results, "retry_at": fields.get("retry_at")}
            await self.notifier.send(_notification(outcome.notify, failure, details, state), claimed=True)
        await self.claims.save(claim, fields, due_at=retry_at)
        self.log.info(_FINISHED[stage], reason=reason, retry_at=fields.get("retry_at"), **_failure_ids(failure))

    async def _retry(self, claim: Claim) -> None:
        failure = claim.failure
        state = await self._describe(failure.secret_arn)
        resolution, reason, token = await self._retry_decision(claim, state)
        entry: dict[str, Any] = {"action": ActionKind.ROTATE.value, "at": utc_iso(self.clock()), "reason": reason.value}
        if token is None:
            entry["result"] = "cancelled"
        else:
            entry.update(await self._rotate(claim, token))
            if entry["result"] == "failed":
                resolution, reason = Resolution.NEEDS_HUMAN, Reason.ACTION_FAILED
        self.metrics.remediations.labels(ActionKind.ROTATE.value, entry["result"]).inc()
        results = [*claim.item.get("results", []), entry]
        # A retry made keeps the diagnosis as the remediation's reason. One not needed (rotated since, someone
        # else's rotation) leaves the failure open: the RotationSucceeded that follows closes it as "recovered".
        fields = {
            "stage": resolution.value,
            "reason": claim.item.get("reason", reason.value) if entry["result"] == "applied" else reason.value,
            "results": results,
            "is_open": reason not in (Reason.SECRET_GONE, Reason.POLICY_OFF),
        }
        if resolution is Resolution.NEEDS_HUMAN:
            self.metrics.remediations.labels("escalate", "applied").inc()
            await self.claims.check(claim)
            details = {"outcome": resolution.value, "reason": reason.value, "actions": results}
            await self.notifier.send(_notification(Kind.NEEDS_HUMAN, failure, details, state), claimed=True)
        await self.claims.save(claim, fields, due_at=None)
        self.log.info("remediation.retried", result=entry["result"], reason=reason.value, **_failure_ids(failure))

    async def _retry_decision(self, claim: Claim, state: SecretState) -> tuple[Resolution, Reason, str | None]:
        planned = Plan.from_item(claim.item["plan"]).retry or Action(ActionKind.ROTATE)
        token = claim.item.get("attempted_token")
        if token is not None:  # a holder that died had recorded the attempt: repeat that very call
            return Resolution.REMEDIATED, Reason.PENDING_KEPT if planned.version_id else Reason.NO_PENDING, token
        failure = claim.failure
        used = await self.attempts.used(failure.secret_arn)
        policy = Policy.for_secret(self.mode, state.tags, **self.retry)
        decision = decide_retry(failure, state, policy, Budget(self.budget_limit, used), planned)
        return decision.resolution, decision.reason, decision.token

    async def _rotate(self, claim: Claim, token: str) -> dict[str, Any]:
        """RotateSecret with a deterministic token, counted against the budget first; the result entry's fields."""
        await self.claims.check(claim, attempted_token=token)
        await self.attempts.record(claim.failure, token)
        try:
            await self.aws.call(
                "secretsmanager",
                "rotate_secret",
                SecretId=claim.failure.secret_arn,
                ClientRequestToken=token,
                RotateImmediately=True,
            )
        except PermanentAwsError as exc:
            return {"token": token, "result": "failed", "error": exc.code}
        return {"token": token, "result": "applied"}

    async def _apply(self, claim: Claim, action: Action, state: SecretState, *, dry_run: bool) -> dict[str, Any]:
        """Carry out one immediate action (idempotently); its result for the audit item."""
        entry: dict[str, Any] = {**action.to_item(), "at": utc_iso(self.clock())}
        arn = claim.failure.secret_arn
        if dry_run:
            entry["result"] = "dry_run"
        elif not still_needed(action, state):
            entry["result"] = "already_done"
        else:
            await self.claims.check(claim, results=claim.item.get("results", []))
            try:
                if action.kind is ActionKind.REMOVE_PENDING:
                    await self.aws.call(
                        "secretsmanager",
                        "update_secret_version_stage",
                        SecretId=arn,
                        VersionStage="AWSPENDING",
                        RemoveFromVersionId=action.version_id,
                    )
                elif action.kind is ActionKind.ROLLBACK:
                    await self.aws.call(
                        "secretsmanager",
                        "update_secret_version_stage",
                        SecretId=arn,
                        VersionStage="AWSCURRENT",
                        MoveToVersionId=action.move_to,
                        RemoveFromVersionId=action.version_id,
                    )
                elif action.kind is ActionKind.RESTART_CONSUMERS:
                    started = await self.aws.call(
                        "ssm",
                        "start_automation_execution",
                        DocumentName=action.document,
                        Parameters={"SecretArn": [arn]},
                        ClientToken=claim.failure.restart_token,
                    )
                    entry["execution_id"] = str(started.get("AutomationExecutionId", ""))
                entry["result"] = "applied"
            except PermanentAwsError as exc:
                # A label move retried after a lost response finds its own work done (AWS and moto then refuse
                # the move): only the secret's state says whether the action failed.
                moved = action.kind in (ActionKind.REMOVE_PENDING, ActionKind.ROLLBACK)
                if moved and not still_needed(action, await self._describe(arn)):
                    entry["result"] = "applied"
                else:
                    entry.update(result="failed", error=exc.code)
        self.metrics.remediations.labels(action.kind.value, entry["result"]).inc()
        self.log.info("remediation.action_applied", **entry, **_failure_ids(claim.failure))
        return entry

    async def _recover(self, event: RotationEvent) -> None:
        """A RotationSucceeded closes the secret's open failures (up to its time) with one "recovered" message."""
        cutoff = utc_iso(event.event_time)
        failures = [c for c in await self.claims.open_claims(event.secret_arn) if str(c.get("failed_at")) <= cutoff]
        if not failures:
            return
        details = {
            "recovered_rotations": sorted(str(c["rotation_id"]) for c in failures),
            "event_id": event.event_id,
        }
        success = Failure.from_event(event)  # the notification's subject: this rotation, which succeeded
        await self.notifier.send(_notification(Kind.RECOVERED, success, details, None))
        for item in failures:
            closed = await self.claims.close(item, {"stage": RECOVERED, "recovered_by": event.rotation_id})
            self.log.info("remediation.recovered", failed_rotation_id=item["rotation_id"], closed=closed, **_ids(event))

    # --- reading the world ----------------------------------------------------------------------------------
    async def _describe(self, secret_arn: str) -> SecretState:
        try:
            described = await self.aws.call("secretsmanager", "describe_secret", SecretId=secret_arn)
        except PermanentAwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return SecretState(exists=False, rotation_enabled=False)
            raise
        return SecretState.from_describe(described)

    async def _trusted(self, event: RotationEvent) -> bool:
        """Only secrets of this account and region (and the allowed ones), by the event's and the ARN's word."""
        parsed = parse_secret_arn(event.secret_arn)
        if parsed is None:
            return False
        arn_region, arn_account, _ = parsed
        if self._account is None:
            self._account = str((await self.aws.call("sts", "get_caller_identity"))["Account"])
        accounts, regions = {event.account, arn_account}, {event.region, arn_region}
        return (
            accounts == {self._account}
            and regions == {self.aws.region}
            and (not self.allowed_accounts or self._account in self.allowed_accounts)
            and (not self.allowed_regions or self.aws.region in self.allowed_regions)
        )


def _notification(kind: Kind, failure: Failure, details: dict[str, Any], state: SecretState | None) -> Notification:
    shown = {"failed_step": failure.failed_step, "account": failure.account, "region": failure.region, **details}
    if state is not None:
        shown["secret_state"] = state.diagnosis()
    clean = {key: value for key, value in shown.items() if value not in (None, "", [], {})}
    return Notification(kind, failure.secret_arn, failure.secret_name, failure.rotation_id, clean)


def _failure_ids(failure: Failure) -> dict[str, str]:
    return {"secret_name": failure.secret_name, "rotation_id": failure.rotation_id}


def _ids(event: RotationEvent) -> dict[str, str]:
    return {"event_name": event.event_name, "secret_name": event.secret_name, "rotation_id": event.rotation_id}
