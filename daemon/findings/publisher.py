"""Imports rotaudit's findings into Security Hub: batches of 100, retries, lookups of what is already there.

`BatchImportFindings` takes at most 100 findings a call and answers per finding: `FailedFindings` lists the ones
it refused (API reference). Those are sent again with jittered backoff (tenacity), except for codes that say the
request itself is wrong; whatever is still refused is logged and counted, never raised: a finding must not hold
back the audit. Transient AWS errors of the call itself are retried by `Aws.call` and then raised, so an event
hook's message is redelivered (hooks are idempotent: the ids are deterministic).

Which findings are open comes from Security Hub itself (`GetFindings` on our generator, account and, for one
secret, its ARN), so every replica and `rotaudit scan --once` see the same state with no table of their own.
Only findings about the calling account's secrets are imported: with the default product ARN, AwsAccountId must
be the caller's (API reference); secrets scanned in other accounts are counted as skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from daemon.audit import Outcome
from daemon.errors import AwsError, PermanentAwsError, RotauditError
from daemon.events import RotationEvent
from daemon.findings.asff import (
    GENERATOR_PREFIX,
    Issue,
    Problem,
    SecretRef,
    active_finding,
    finding_id,
    generator_id,
    parse_time,
    product_arn,
    resolved_finding,
)
from daemon.findings.metrics import FindingsMetrics
from daemon.logs import get_logger
from daemon.timer import Clock, utc_now

BATCH_MAX = 100  # BatchImportFindings: "up to 100 findings" per request
PAGE_MAX = 100  # GetFindings MaxResults
_SECOND = timedelta(seconds=1)
REFUSED_FOR_GOOD = frozenset({"InvalidInput", "InvalidAccess", "AccessDenied", "AccessDeniedException"})


class AwsCaller(Protocol):
    """What the publisher needs of `daemon.aws.Aws`."""

    region: str

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...


class _Refused(RotauditError):
    """Some findings of a batch were refused with a code worth another try."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What one scan said of one secret: flagged or not, why, when, and the figures to show."""

    secret: SecretRef
    flagged: bool
    observed_at: datetime
    reasons: tuple[str, ...] = ()
    facts: dict[str, str] = field(default_factory=dict)


class FindingsPublisher:
    """Raises and resolves one replica's findings in its region's Security Hub."""

    def __init__(
        self,
        aws: AwsCaller,
        metrics: FindingsMetrics,
        *,
        scan_action: str = "",
        failure_action: str = "",
        clock: Clock = utc_now,
        max_attempts: int = 4,
        wait_max_s: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.aws = aws
        self.region = aws.region
        self.metrics = metrics
        self.scan_action = scan_action  # what rotaudit does about a flagged secret (the description's last words)
        self.failure_action = failure_action  # ... about a failed rotation
        self.clock = clock
        self.max_attempts = max_attempts
        self.wait_max_s = wait_max_s
        self.sleep = sleep
        self.log = get_logger("findings")
        self._account = ""

    async def account(self) -> str:
        if not self._account:
            identity = await self.aws.call("sts", "get_caller_identity")
            self._account = str(identity["Account"])
        return self._account

    # --- what is there -------------------------------------------------------------------------------------------
    async def findings(
        self, *, problem: Problem | None = None, secret_arn: str = "", active_only: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Our findings in this account: of one problem or all, about one secret or all, ACTIVE only or any."""
        account = await self.account()
        filters: dict[str, list[dict[str, str]]] = {
            "ProductArn": [{"Value": product_arn(self.region, account), "Comparison": "EQUALS"}],
            "AwsAccountId": [{"Value": account, "Comparison": "EQUALS"}],
            "GeneratorId": [
                {"Value": generator_id(problem), "Comparison": "EQUALS"}
                if problem is not None
                else {"Value": GENERATOR_PREFIX, "Comparison": "PREFIX"}
            ],
        }
        if secret_arn:
            filters["ResourceId"] = [{"Value": secret_arn, "Comparison": "EQUALS"}]
        if active_only:
            filters["RecordState"] = [{"Value": "ACTIVE", "Comparison": "EQUALS"}]
        token = ""
        while True:
            extra = {"NextToken": token} if token else {}
            page = await self.aws.call("securityhub", "get_findings", Filters=filters, MaxResults=PAGE_MAX, **extra)
            for finding in page.get("Findings", []):
                yield finding
            token = page.get("NextToken") or ""
            if not token:
                return

    # --- one secret at a time (events, remediation) ---------------------------------------------------------------
    async def raise_issue(self, issue: Issue) -> None:
        """Say `issue` is there, unless the secret is in another account or a newer observation is already there."""
        if issue.secret.account != await self.account():
            self.metrics.skipped.labels("other_account").inc()
            return
        fid = finding_id(issue.secret.account, issue.secret.region, issue.secret.arn, issue.problem)
        existing = {f["Id"]: f async for f in self.findings(problem=issue.problem, secret_arn=issue.secret.arn)}
        found = existing.get(fid)
        if found is not None and _observed(found) is not None and _observed(found) > issue.observed_at:  # type: ignore[operator]
            self.metrics.skipped.labels("stale").inc()
            return
        created = _created(found) if found is not None and found.get("RecordState") == "ACTIVE" else None
        now = self.clock()
        await self.publish([active_finding(issue, home_region=self.region, created_at=created or now, updated_at=now)])

    async def resolve(self, secret: SecretRef, observed_at: datetime, action: str, facts: dict[str, str]) -> None:
        """Resolve every ACTIVE finding of `secret` observed before `observed_at` (a RotationSucceeded)."""
        if secret.account != await self.account():
            return
        now = self.clock()
        resolved = []
        async for found in self.findings(secret_arn=secret.arn, active_only=True):
            seen = _observed(found)
            if seen is not None and seen > observed_at:
                self.metrics.skipped.labels("stale").inc()
                continue
            problem = Problem(str(found.get("GeneratorId", "")).removeprefix(GENERATOR_PREFIX))
            issue = Issue(problem, secret, observed_at, _reasons(found), action, facts)
            created = _created(found) or now
            resolved.append(resolved_finding(issue, home_region=self.region, created_at=created, updated_at=now))
        await self.publish(resolved)

    # --- hooks: an audited event, a remediation that needs a human ------------------------------------------------
    async def on_event(self, event: RotationEvent, outcome: Outcome) -> None:
        """The processor's hook: a RotationFailed raises its finding, a RotationSucceeded resolves the secret's.

        Runs for duplicates too (the ids make it idempotent). A transient error is raised, so the message is
        redelivered; a permanent one (Security Hub off, access denied) is logged and counted: it must not hold
        the queue up.
        """
        if event.is_test or event.event_name not in ("RotationFailed", "RotationSucceeded"):
            return
        secret = SecretRef(event.secret_arn, event.secret_name)
        facts = {"rotation_id": event.rotation_id}
        try:
            if event.event_name == "RotationSucceeded":
                action = f"Secrets Manager reported RotationSucceeded (rotation {event.rotation_id})."
                # CloudTrail times are whole seconds: the success came at the end of its second at the latest.
                await self.resolve(secret, event.event_time + _SECOND, action, facts)
                return
            step = event.failed_step or "unknown_step"
            issue = Issue(Problem.ROTATION_FAILED, secret, event.event_time, (step,), self.failure_action, facts)
            await self.raise_issue(issue)
        except PermanentAwsError as exc:
            self.metrics.failed.labels("error").inc()
            self.log.error("findings.publish_failed", error=str(exc), secret_name=event.secret_name)

    async def needs_human(
        self, secret: SecretRef, rotation_id: str, reason: str, facts: dict[str, str], at: datetime | None = None
    ) -> None:
        """Remediation escalated a failure: raise its finding. Errors are logged, not raised (the notice goes on)."""
        action = "rotaudit's remediation escalated it: a human must act; an SNS notice was sent where configured."
        observed = at or self.clock()
        issue = Issue(Problem.NEEDS_HUMAN, secret, observed, (reason,), action, {"rotation_id": rotation_id, **facts})
        try:
            await self.raise_issue(issue)
        except AwsError as exc:
            self.metrics.failed.labels("error").inc()
            self.log.error("findings.publish_failed", error=str(exc), secret_name=secret.name)

    # --- a whole scan run ----------------------------------------------------------------------------------------
    def scan_run(self, run_id: str) -> ScanRun:
        return ScanRun(self, run_id)

    # --- importing -----------------------------------------------------------------------------------------------
    async def publish(self, findings: Iterable[dict[str, Any]]) -> int:
        """Import `findings` in batches of 100; the number accepted. Refusals are retried, then counted."""
        batch: list[dict[str, Any]] = []
        accepted = 0
        for finding in findings:
            batch.append(finding)
            if len(batch) == BATCH_MAX:
                accepted += await self._import(batch)
                batch = []
        if batch:
            accepted += await self._import(batch)
        return accepted

    async def _import(self, batch: list[dict[str, Any]]) -> int:
        pending = {f["Id"]: f for f in batch}  # AWS takes one finding per id a batch: the last word wins
        refused: dict[str, str] = {}
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Refused),
            wait=wait_random_exponential(multiplier=0.2, max=self.wait_max_s),
            stop=stop_after_attempt(self.max_attempts),
            sleep=self.sleep,
            reraise=False,
            retry_error_callback=lambda _: None,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    findings = list(pending.values())
                    answer = await self.aws.call("securityhub", "batch_import_findings", Findings=findings)
                except AwsError:
                    self.metrics.failed.labels("error").inc(len(pending))
                    raise
                failed = {str(f.get("Id", "")): str(f.get("ErrorCode", "")) for f in answer.get("FailedFindings", [])}
                for fid, finding in pending.items():
                    if fid not in failed:
                        self.metrics.imported.labels(_problem(finding), _state(finding)).inc()
                refused.update({fid: code for fid, code in failed.items() if code in REFUSED_FOR_GOOD})
                pending = {fid: f for fid, f in pending.items() if fid in failed and fid not in refused}
                if pending:
                    raise _Refused(f"{len(pending)} findings refused")
        for fid in pending:
            refused.setdefault(fid, "retries_exhausted")
        if refused:
            self.metrics.failed.labels("refused").inc(len(refused))
            self.log.warning("findings.import_refused", count=len(refused), codes=sorted(set(refused.values())))
        return len(batch) - len(refused)


class ScanRun:
    """One scan run's findings: flagged secrets raised, ACTIVE ones now fine resolved, sent in batches of 100.

    `start` reads which needs-rotation findings are ACTIVE; memory holds those ids and one batch. A Security Hub
    failure is logged and counted, never raised: the scan's own rows are the record, and the next run repeats.
    """

    def __init__(self, publisher: FindingsPublisher, run_id: str) -> None:
        self.publisher = publisher
        self.run_id = run_id
        self.account = ""
        self.active: dict[str, datetime | None] = {}  # id -> CreatedAt of our ACTIVE needs-rotation findings
        self.batch: list[dict[str, Any]] = []
        self.broken = False

    async def start(self) -> None:
        try:
            self.account = await self.publisher.account()
            async for found in self.publisher.findings(problem=Problem.NEEDS_ROTATION, active_only=True):
                self.active[str(found["Id"])] = _created(found)
        except AwsError as exc:
            self._broke(exc)

    async def observe(self, seen: Observation) -> None:
        if self.broken:
            return
        secret = seen.secret
        if secret.account != self.account:
            if seen.flagged:  # no finding can say it (AwsAccountId must be the caller's): count what goes unsaid
                self.publisher.metrics.skipped.labels("other_account").inc()
            return
        fid = finding_id(secret.account, secret.region, secret.arn, Problem.NEEDS_ROTATION)
        if not seen.flagged and fid not in self.active:
            return
        facts = {"scan_run": self.run_id, **seen.facts}
        region, now = self.publisher.region, self.publisher.clock()
        created = self.active.get(fid) or seen.observed_at
        if seen.flagged:
            action = self.publisher.scan_action
            issue = Issue(Problem.NEEDS_ROTATION, secret, seen.observed_at, seen.reasons, action, facts)
            self.batch.append(active_finding(issue, home_region=region, created_at=created, updated_at=now))
        else:
            action = f"rotaudit's scan run {self.run_id} found it within the age limit again."
            issue = Issue(Problem.NEEDS_ROTATION, secret, seen.observed_at, seen.reasons, action, facts)
            self.batch.append(resolved_finding(issue, home_region=region, created_at=created, updated_at=now))
        if len(self.batch) >= BATCH_MAX:
            await self._flush()

    async def finish(self) -> None:
        if not self.broken:
            await self._flush()

    async def _flush(self) -> None:
        batch, self.batch = self.batch, []
        try:
            await self.publisher.publish(batch)
        except AwsError as exc:
            self._broke(exc)

    def _broke(self, exc: AwsError) -> None:
        self.broken = True
        self.publisher.log.error("findings.scan_publish_failed", run_id=self.run_id, error=str(exc))


def _observed(finding: dict[str, Any]) -> datetime | None:
    return parse_time(finding.get("ProductFields", {}).get("rotaudit/observed_at"))


def _created(finding: dict[str, Any] | None) -> datetime | None:
    return parse_time(finding.get("CreatedAt")) if finding else None


def _reasons(finding: dict[str, Any]) -> tuple[str, ...]:
    text = str(finding.get("ProductFields", {}).get("rotaudit/reasons", ""))
    return tuple(r for r in text.split(",") if r)


def _problem(finding: dict[str, Any]) -> str:
    return str(finding.get("GeneratorId", "")).removeprefix(GENERATOR_PREFIX)


def _state(finding: dict[str, Any]) -> str:
    return "resolved" if finding.get("RecordState") == "ARCHIVED" else "active"
