"""Builds the daemon's optional features from `Config`: follow-up hooks for audited events, periodic jobs.

A hook is `async (event, outcome) -> None` and runs after the event's audit item is durable (for duplicates
too: hooks are idempotent). A job is `async (stop) -> None` and runs until `stop` is set. Each feature adds
itself here, with its metrics built once on the app's registry and injected, so `app` stays a plain supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.aws import Aws
from daemon.config import Config
from daemon.dlq.metrics import DlqMetrics
from daemon.dlq.monitor import DlqMonitor
from daemon.failures.metrics import FailureMetrics
from daemon.failures.store import FailureStore
from daemon.failures.tracker import FailureTracker
from daemon.findings.asff import SecretRef
from daemon.findings.metrics import FindingsMetrics
from daemon.findings.publisher import FindingsPublisher, Observation, ScanRun
from daemon.metrics import Metrics
from daemon.processor import EventHook
from daemon.remediation.build import build_remediator
from daemon.remediation.job import RetryJob
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.notify import NoticeListener, Notification
from daemon.remediation.outcome import Kind
from daemon.scan.metrics import ScanMetrics
from daemon.scan.scanner import ObserverFactory, Scanner
from daemon.sync.metrics import SyncMetrics
from daemon.sync.syncer import Syncer

Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Features:
    hooks: list[EventHook] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)


def build_features(aws: Aws, config: Config, metrics: Metrics, *, dlq_url: str) -> Features:
    """Every enabled feature's hooks and jobs; `dlq_url` is the DLQ resolved at start-up ("" for none)."""
    features = Features()
    registry = metrics.registry
    findings = build_findings(aws, config, FindingsMetrics(registry)) if config.securityhub else None
    # Open failures first: its item exists before remediation (a later hook) can escalate the failure.
    failures = FailureTracker(
        FailureStore(aws, config.audit_table), FailureMetrics(registry), refresh_s=config.failures_refresh_s
    )
    features.hooks.append(failures.on_event)
    features.jobs["failures"] = failures.run
    if dlq_url:
        monitor = DlqMonitor(aws, dlq_url, DlqMetrics(registry), poll_s=config.dlq_poll_s)
        features.jobs["dlq_monitor"] = monitor.run
    if config.sync_pairs:
        syncer = Syncer.from_config(aws, config, SyncMetrics(registry))
        features.hooks.append(syncer.on_event)
        features.jobs["sync"] = syncer.run
    if config.remediation_mode != "off":
        remediator = build_remediator(
            aws,
            config,
            RemediationMetrics(registry),
            retry_base_s=config.remediation_retry_base_s,
            notice_listeners=[
                escalation_listener(failures),
                *([needs_human_listener(findings)] if findings is not None else []),
            ],
        )
        features.hooks.append(remediator.on_event)
        features.jobs["remediation"] = RetryJob(remediator, poll_s=config.remediation_poll_s).run
    if config.scan_enabled:
        scan_metrics = ScanMetrics(registry, age_gauge=config.scan_age_gauge)
        observers = [scan_observer(findings)] if findings is not None else []
        features.jobs["scan"] = Scanner.from_config(aws, config, scan_metrics, observers=observers).run
    if findings is not None:
        features.hooks.append(findings.on_event)  # last: a transient failure here retries after the others ran
    return features


# --- Security Hub findings: the scan's rows, the processor's events and remediation's notices, adapted ----------


def build_findings(aws: Aws, config: Config, metrics: FindingsMetrics) -> FindingsPublisher:
    """The findings publisher; the descriptions say what this deployment does about each problem."""
    remediation = {
        "apply": "rotaudit's remediation waits out Secrets Manager's own retries, then repairs the labels, retries "
        "the rotation or escalates to a human.",
        "dry-run": "rotaudit's remediation is in dry-run: it plans and notifies, and changes nothing.",
        "off": "rotaudit's remediation is off: a human must act.",
    }[config.remediation_mode]
    return FindingsPublisher(
        aws,
        metrics,
        scan_action=f"rotaudit recorded it in the audit table; its age limit is {config.max_age_days} days. "
        "The scan changes nothing: rotate the secret, or fix its rotation.",
        failure_action=f"rotaudit recorded the failure in the audit table. {remediation}",
    )


def observation_of(row: dict[str, Any]) -> Observation:
    """A scan row (daemon.scan.report.scan_row) as the findings see it: names, verdict, reasons, figures."""
    facts = {"age_days": str(row["age_days"])} if row.get("age_days") is not None else {}
    if row.get("last_rotated_at"):
        facts["last_rotated_at"] = str(row["last_rotated_at"])
    return Observation(
        SecretRef(str(row["secret_arn"]), str(row["secret_name"])),
        flagged=row["status"] == "needs_rotation",
        observed_at=datetime.fromisoformat(str(row["checked_at"]).replace("Z", "+00:00")),
        reasons=tuple(str(reason) for reason in row.get("reasons", [])),
        facts=facts,
    )


class _ScanFindings:
    """One run's findings, fed the scan's rows."""

    def __init__(self, run: ScanRun) -> None:
        self.run = run

    async def start(self) -> None:
        await self.run.start()

    async def row(self, row: dict[str, Any]) -> None:
        await self.run.observe(observation_of(row))

    async def finish(self) -> None:
        await self.run.finish()


def scan_observer(findings: FindingsPublisher) -> ObserverFactory:
    """What the scanner calls for each run (the daemon's timer and `rotaudit scan --once` alike)."""
    return lambda run_id: _ScanFindings(findings.scan_run(run_id))


def escalation_listener(failures: FailureTracker) -> NoticeListener:
    """Remediation's escalations mark the open failure `needs_human`. A TransientAwsError fails the send, as a
    failed publish does, so the claim's outbox sends (and marks) again later; nothing else is raised."""

    async def listen(notice: Notification) -> None:
        if notice.kind is Kind.NEEDS_HUMAN:
            await failures.needs_human(notice.secret_arn, notice.secret_name, notice.rotation_id)

    return listen


def needs_human_listener(findings: FindingsPublisher) -> NoticeListener:
    """Remediation's escalations become needs-human findings; other notices are not findings."""

    async def listen(notice: Notification) -> None:
        if notice.kind is not Kind.NEEDS_HUMAN:
            return
        shown = {k: str(notice.details[k]) for k in ("failed_step", "advice") if notice.details.get(k)}
        reason = str(notice.details.get("reason") or "needs_human")
        secret = SecretRef(notice.secret_arn, notice.secret_name)
        await findings.needs_human(secret, notice.rotation_id, reason, shown)

    return listen
