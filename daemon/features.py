"""Builds the daemon's optional features from `Config`: follow-up hooks for audited events, periodic jobs.

A hook is `async (event, outcome) -> None` and runs after the event's audit item is durable (for duplicates
too: hooks are idempotent). A job is `async (stop) -> None` and runs until `stop` is set. Each feature adds
itself here, with its metrics built once on the app's registry and injected, so `app` stays a plain supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from daemon.aws import Aws
from daemon.config import Config
from daemon.dlq.metrics import DlqMetrics
from daemon.dlq.monitor import DlqMonitor
from daemon.failures.metrics import FailureMetrics
from daemon.failures.store import FailureStore
from daemon.failures.tracker import FailureTracker
from daemon.metrics import Metrics
from daemon.processor import EventHook
from daemon.remediation.build import build_remediator
from daemon.remediation.job import RetryJob
from daemon.remediation.metrics import RemediationMetrics
from daemon.scan.metrics import ScanMetrics
from daemon.scan.scanner import Scanner
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
    if dlq_url:
        monitor = DlqMonitor(aws, dlq_url, DlqMetrics(registry), poll_s=config.dlq_poll_s)
        features.jobs["dlq_monitor"] = monitor.run
    # Open failures first: its item exists before remediation (the next hook) can escalate the failure.
    failures = FailureTracker(
        FailureStore(aws, config.audit_table), FailureMetrics(registry), refresh_s=config.failures_refresh_s
    )
    features.hooks.append(failures.on_event)
    features.jobs["failures"] = failures.run
    if config.sync_pairs:
        syncer = Syncer.from_config(aws, config, SyncMetrics(registry))
        features.hooks.append(syncer.on_event)
        features.jobs["sync"] = syncer.run
    if config.remediation_mode != "off":
        remediator = build_remediator(
            aws, config, RemediationMetrics(registry), retry_base_s=config.remediation_retry_base_s
        )
        remediator.escalated = lambda f: failures.needs_human(f.secret_arn, f.secret_name, f.failed_at)
        features.hooks.append(remediator.on_event)
        features.jobs["remediation"] = RetryJob(remediator, poll_s=config.remediation_poll_s).run
    if config.scan_enabled:
        scan_metrics = ScanMetrics(registry, age_gauge=config.scan_age_gauge)
        features.jobs["scan"] = Scanner.from_config(aws, config, scan_metrics).run
    return features
