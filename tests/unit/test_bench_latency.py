"""The latency benchmark's arithmetic, and the lag alert's threshold against the figures it was derived from."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from bench.latency_probe import nearest_rank, parse_recorded_at
from bench.latency_report import ALERT_FACTOR, derive_alert
from daemon.metrics import _LAG_BUCKETS
from tests.support import ROOT


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0], 99, 2.0),
        ([3.0, 1.0, 2.0, 4.0], 50, 2.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([float(n) for n in range(1, 101)], 50, 50.0),
        ([float(n) for n in range(1, 201)], 99, 198.0),
        ([float(n) for n in range(1, 301)], 99, 297.0),
    ],
)
def test_nearest_rank_picks_the_smallest_value_covering_the_percentile(
    values: list[float], percentile: float, expected: float
) -> None:
    """The nearest-rank percentile is a measured value, the ceil(p% of n)-th smallest."""
    assert nearest_rank(values, percentile) == expected


@pytest.mark.parametrize(
    ("text", "epoch_s"),
    [
        ("2026-12-05T01:02:03.456Z", 1796432523.456),  # rotaudit's utc_iso
        ("2026-12-05T01:02:03.456789", 1796432523.456789),  # the baseline's naive datetime.utcnow().isoformat()
    ],
)
def test_recorded_at_reads_both_contenders_stamps_as_utc(text: str, epoch_s: float) -> None:
    """Both contenders' recorded_at stamps are UTC, whichever way they are written."""
    assert parse_recorded_at(text) == pytest.approx(epoch_s)


def _run(contender: str, latency_ms: float, steady_p99: float, burst_p99: float) -> dict[str, Any]:
    return {
        "contender": contender,
        "latency_ms": latency_ms,
        "steady": {"readable_s": {"p99": steady_p99}},
        "burst": {"readable_s": {"p99": burst_p99}},
    }


@pytest.mark.parametrize(
    ("runs", "phase", "threshold_s"),
    [
        ([_run("rotaudit", 20.0, 0.09, 0.4)], "burst", 5),  # 4 s, to the next bucket
        ([_run("rotaudit", 20.0, 0.09, 0.5)], "burst", 5),  # on a boundary: that bucket
        ([_run("rotaudit", 20.0, 0.09, 0.6)], "burst", 10),
        ([_run("rotaudit", 20.0, 0.7, 0.2)], "steady", 10),  # the worse phase counts
        ([_run("rotaudit", 0.0, 9.0, 9.0), _run("rotaudit", 20.0, 0.09, 0.2)], "burst", 2.5),  # highest latency only
        ([_run("baseline", 20.0, 0.09, 9.0), _run("rotaudit", 20.0, 0.09, 0.2)], "burst", 2.5),  # rotaudit only
    ],
)
def test_alert_threshold_is_the_bucket_at_or_above_the_factor_times_p99(
    runs: list[dict[str, Any]], phase: str, threshold_s: float
) -> None:
    """The threshold is the first lag bucket at or above ALERT_FACTOR x rotaudit's worst p99 at the highest latency."""
    alert = derive_alert(runs)
    assert alert is not None
    assert (alert["phase"], alert["threshold_s"]) == (phase, threshold_s)
    assert alert["threshold_s"] in _LAG_BUCKETS


def test_no_alert_threshold_without_a_rotaudit_run() -> None:
    """A latency run of the baseline alone derives nothing."""
    assert derive_alert([_run("baseline", 20.0, 0.1, 1.0)]) is None


def test_lag_alert_threshold_is_the_one_derived_from_the_published_figures() -> None:
    """RotauditEventLagHigh fires above the threshold bench/results.json derives from the measured p99."""
    alert = json.loads((ROOT / "bench" / "results.json").read_text())["latency"]["alert"]
    assert alert["threshold_s"] >= ALERT_FACTOR * alert["p99_s"]
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())["groups"]
    rule = next(rule for group in groups for rule in group["rules"] if rule.get("alert") == "RotauditEventLagHigh")
    found = re.search(r"histogram_quantile\(.*?\)\s*>\s*([0-9.]+)\s", rule["expr"], re.S)
    assert found, rule["expr"]
    assert float(found.group(1)) == alert["threshold_s"]
