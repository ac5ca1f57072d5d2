"""The report as one JSON document: what the HTML shows, and what tests and auditors' tools read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from daemon.evidence.model import SecretFigures, fleet_summary, secret_summary
from daemon.evidence.report import Built


def ordered(secrets: Iterable[SecretFigures]) -> list[SecretFigures]:
    """Secrets that were ever out of compliance first, then by name."""
    return sorted(secrets, key=lambda s: (not s.ever_out_of_compliance, s.secret_name, s.secret_arn))


def document(built: Built, secrets: Iterable[SecretFigures], *, table: str, generated_at: str) -> dict[str, Any]:
    """The report's content: period, fleet, each secret, each failure, the reads' cost and the manifest."""
    stats = built.stats
    failures = sorted(built.totals.failures, key=lambda f: (f.failed_at, f.secret_name, f.rotation_id))
    return {
        "report": "rotaudit evidence",
        "generated_at": generated_at,
        "table": table,
        "period": {"since": built.manifest["parameters"]["since"], "until": built.manifest["parameters"]["until"]},
        "fleet": fleet_summary(built.totals),
        "secrets": [secret_summary(s) for s in ordered(secrets)],
        "failures": [
            {
                "secret_name": f.secret_name,
                "rotation_id": f.rotation_id,
                "failed_at": f.failed_at,
                "failed_step": f.failed_step,
                "recovered_at": f.recovered_at,
                "recovery_s": f.recovery_s,
            }
            for f in failures
        ],
        "reads": {
            "queries": stats.queries,
            "items": stats.items,
            "secrets": stats.secrets,
            "items_per_secret": round(stats.items / stats.secrets, 1) if stats.secrets else 0,
        },
        "manifest": built.manifest,
    }


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
