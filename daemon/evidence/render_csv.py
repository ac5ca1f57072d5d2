"""The report as CSV, streamed: one row per secret (ever out of compliance first), a fleet row, then the manifest.

Rows are spooled as they come (to disk past 1 MiB), in two files: secrets that were ever out of compliance and the
rest; `finish` writes the header, both, the fleet row and `#` manifest lines. Memory stays flat in the number of
secrets. Within each group rows keep the reading order (by shard, then ARN).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from typing import IO, Any

from daemon.evidence.model import SecretFigures, fleet_summary, secret_summary
from daemon.evidence.report import Built

COLUMNS = (
    "scope",
    "secret_name",
    "secret_arn",
    "ever_out_of_compliance",
    "rotations_started",
    "rotations_succeeded",
    "rotations_failed",
    "failures_recovered",
    "failures_unrecovered",
    "recovery_seconds",
    "recovery_mean_s",
    "recovery_max_s",
    "remediations",
    "remediation_outcomes",
    "max_over_age_days",
    "scan_runs",
    "compliant_runs",
    "compliant_share",
    "age_days_at_end",
)
SPOOL_BYTES = 1 << 20


def cell(value: Any) -> str:
    """A value as a CSV cell: empty for none, lists joined by `;`, outcome counts as `name=count;...`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{round(value, 4):g}" if abs(value) < 1e15 else str(value)
    if isinstance(value, list):
        return ";".join(cell(v) if v is not None else "unrecovered" for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class CsvReport:
    """`add` each secret's figures as they are built; `finish(out, built)` writes the whole CSV."""

    def __init__(self) -> None:
        self._flagged: IO[str] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", newline="")  # noqa: SIM115 - closed in finish
        self._rest: IO[str] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", newline="")  # noqa: SIM115 - closed in finish

    def add(self, figures: SecretFigures) -> None:
        summary = secret_summary(figures) | {"scope": "secret"}
        target = self._flagged if figures.ever_out_of_compliance else self._rest
        csv.writer(target).writerow([cell(summary.get(column)) for column in COLUMNS])

    def finish(self, out: IO[str], built: Built) -> None:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for spool in (self._flagged, self._rest):
            spool.seek(0)
            shutil.copyfileobj(spool, out)
            spool.close()
        fleet = fleet_summary(built.totals) | {"scope": "fleet", "secret_name": f"{built.totals.secrets} secrets"}
        writer.writerow([cell(fleet.get(column)) for column in COLUMNS])
        manifest = built.manifest
        params = manifest["parameters"]
        out.write(f"# manifest,{manifest['algorithm']},{manifest['sha256']}\n")
        out.write(f"# items,{manifest['items']},secrets,{manifest['secrets']}\n")
        out.write(f"# since,{params['since']},until,{params['until']},format,{params['format']}\n")
        if params["secrets"]:
            out.write(f"# secrets,{';'.join(params['secrets'])}\n")
