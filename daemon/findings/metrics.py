"""The Security Hub findings' Prometheus metrics, built once on the app's registry and handed to the publisher."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class FindingsMetrics:
    """Findings imported (by problem and state), refused or failed imports, and findings skipped (closed sets)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.imported = Counter(
            "rotaudit_findings_imported",
            "Findings Security Hub accepted, by problem and record state (active, resolved).",
            ["problem", "state"],
            registry=registry,
        )
        self.failed = Counter(
            "rotaudit_findings_failed",
            "Findings not imported: refused in FailedFindings after retries (refused), or the call failed (error).",
            ["outcome"],
            registry=registry,
        )
        self.skipped = Counter(
            "rotaudit_findings_skipped",
            "Findings not sent: the secret is in another account (other_account), or a newer one is there (stale).",
            ["reason"],
            registry=registry,
        )
