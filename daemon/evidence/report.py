"""One report run: read the period secret by secret, aggregate, hash, and hand each secret's figures to a sink."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.evidence.manifest import Manifest
from daemon.evidence.model import FleetTotals, RunEntry, SecretFigures, secret_figures
from daemon.evidence.reader import PeriodReader, ReadStats, SecretItems


@dataclass(frozen=True, slots=True)
class Built:
    """What a run leaves once every secret went to the sink."""

    totals: FleetTotals
    manifest: dict[str, Any]
    stats: ReadStats


def runs_of(group: SecretItems) -> list[RunEntry]:
    return [RunEntry.parse(run_id, entry) for rollup in group.rollups for run_id, entry in rollup["runs"].items()]


async def build(
    reader: PeriodReader,
    sink: Callable[[SecretFigures], None],
    *,
    secrets: Sequence[str] = (),
    keep_failures: bool = False,
) -> Built:
    """Read [since, until) (only `secrets`, ARNs, when given), giving each secret's figures to `sink` as it goes."""
    totals = FleetTotals(keep_failures=keep_failures)
    manifest = Manifest(reader.since_iso, reader.until_iso, list(secrets))
    async for group in reader.secrets(secrets):
        manifest.add(group)
        figures = secret_figures(group.secret_arn, group.events, runs_of(group), group.secret_name)
        totals.add(figures)
        sink(figures)
    return Built(totals, manifest.summary(), reader.stats)
