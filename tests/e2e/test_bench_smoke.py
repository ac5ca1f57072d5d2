"""`python -m bench --quick` end to end: every benchmark runs its real contenders and reports sane figures.

One quick run (all four benchmarks, small sizes, each on its own emulator process) is shared by the tests below;
they check what the run measured against what it was given, never against fixed numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from daemon.metrics import _LAG_BUCKETS
from tests.support import ROOT

pytestmark = pytest.mark.slow

QUICK_TIMEOUT_S = 150  # about 20 s on an idle two-core machine; the machine running the suite is rarely idle


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The quick run's exit code, output, results.json and results.md."""
    out_dir = tmp_path_factory.mktemp("bench")
    out = out_dir / "results.json"
    argv = [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--logs", str(out_dir / "logs")]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=QUICK_TIMEOUT_S, check=False)
    found = json.loads(out.read_text()) if out.exists() else {}
    markdown = out.with_suffix(".md").read_text() if out.with_suffix(".md").exists() else ""
    return {"code": done.returncode, "stderr": done.stderr, "results": found, "markdown": markdown}


def test_quick_bench_exits_0_with_every_section(quick: dict[str, Any]) -> None:
    """The quick run succeeds and writes one results file holding the ingest, scan, lifecycle and latency sections."""
    assert quick["code"] == 0, quick["stderr"][-3000:]
    assert {"ingest", "scan", "lifecycle", "latency", "targets", "machine"} <= set(quick["results"])
    sections = ("ingest", "scan", "lifecycle", "latency")
    assert all(quick["results"][name]["parameters"]["quick"] is True for name in sections)


def test_ingest_contenders_drained_every_event(quick: dict[str, Any]) -> None:
    """Each ingest contender wrote every distinct event once, with positive time, calls and CPU."""
    ingest = quick["results"]["ingest"]
    assert {run["contender"] for run in ingest["best"]} == {"rotaudit", "baseline", "ceiling"}
    for run in ingest["best"]:
        assert run["table_items"] == run["unique_events"] == ingest["parameters"]["unique_events"]
        assert run["exit_code"] == 0
        for key in ("seconds", "unique_events_per_s", "aws_calls_per_unique_event", "cpu_ms_per_unique_event"):
            assert _positive(run[key]), (run["contender"], key, run[key])
    for entry in ingest["ratios"].values():
        assert all(_positive(value) for value in entry.values()), entry


def test_scan_contenders_checked_every_managed_secret(quick: dict[str, Any]) -> None:
    """Both scan contenders checked and wrote a row for exactly the Managed=true secrets, decoys skipped."""
    scan = quick["results"]["scan"]
    inventory = scan["parameters"]["inventory"]
    assert inventory["secrets"] > inventory["managed"] > 0  # decoys were seeded beside the managed secrets
    runs = {run["contender"]: run for run in scan["best"]}
    assert set(runs) == {"rotaudit", "baseline"}
    for run in runs.values():
        assert run["checked"] == run["rows"] == inventory["managed"]
        for key in ("seconds", "cpu_s", "aws_calls", "peak_rss_mb", "rss_before_mb", "emulator_cpu_s"):
            assert _positive(run[key]), (run["contender"], key, run[key])
    # The seed's handler writes one item per call; rotaudit batches them and lists only what it must.
    assert runs["baseline"]["aws_calls_by_operation"]["dynamodb.PutItem"] == inventory["managed"]
    assert runs["rotaudit"]["aws_calls_by_operation"]["dynamodb.BatchWriteItem"] >= inventory["managed"] / 25
    assert runs["rotaudit"]["aws_calls"] < runs["baseline"]["aws_calls"]


def test_scan_rotaudit_flags_what_the_inventory_says(quick: dict[str, Any]) -> None:
    """rotaudit's scanner flags exactly the secrets the seeded inventory says need rotation."""
    scan = quick["results"]["scan"]
    rotaudit = next(run for run in scan["best"] if run["contender"] == "rotaudit")
    assert rotaudit["flagged"] == rotaudit["flagged_expected"] == scan["parameters"]["inventory"]["flagged"]


def test_lifecycle_times_and_memory_are_positive(quick: dict[str, Any]) -> None:
    """The daemon became ready, held memory, drained its queue and exited on SIGTERM, each with a positive figure."""
    lifecycle = quick["results"]["lifecycle"]
    assert len(lifecycle["runs"]) == lifecycle["parameters"]["runs"]
    for key, value in lifecycle["median"].items():
        assert _positive(value), (key, value)


def test_latency_every_sent_event_was_read_back(quick: dict[str, Any]) -> None:
    """Each latency contender's table yielded every steady and burst event it was sent, each with its own stamp."""
    latency = quick["results"]["latency"]
    params = latency["parameters"]
    runs = {(run["contender"], run["latency_ms"]): run for run in latency["runs"]}
    assert set(runs) == {(name, ms) for name in ("rotaudit", "baseline") for ms in params["latency_ms"]}
    for run in runs.values():
        assert run["exit_code"] == 0
        for phase, sent in (("steady", params["steady_events"]), ("burst", params["burst_events"])):
            readable, started = run[phase]["readable_s"], run[phase]["write_started_s"]
            assert readable["count"] == started["count"] == sent, (run["contender"], phase)
            # Order, not speed: an item is read only after its send returned, and percentiles are ranks.
            assert 0 < readable["p50"] <= readable["p99"] <= readable["max"], (run["contender"], phase, readable)
        assert _positive(run["aws_calls"])
    # rotaudit's own lag histogram saw the events too (SentTimestamp on the emulator's clock).
    for (name, _), run in runs.items():
        if name == "rotaudit":
            assert all(math.isfinite(run[phase]["own_event_lag_mean_s"]) for phase in ("steady", "burst"))


def test_latency_states_the_emulators_round_trips_and_the_alert_threshold(quick: dict[str, Any]) -> None:
    """The latency section times each emulator operation it names and derives the lag alert from rotaudit's p99."""
    latency = quick["results"]["latency"]
    params = latency["parameters"]
    operations = {"sqs.SendMessage", "sqs.ReceiveMessage", "dynamodb.PutItem", "dynamodb.GetItem"}
    assert set(latency["emulator_round_trip_ms"]) == {f"{ms:g}ms" for ms in params["latency_ms"]}
    for trips in latency["emulator_round_trip_ms"].values():
        assert operations <= set(trips)
        for figures in trips.values():
            assert figures["count"] == params["probe_samples"]
            assert _positive(figures["p50"])
    alert = latency["alert"]
    assert alert["threshold_s"] in _LAG_BUCKETS
    assert alert["threshold_s"] >= alert["factor"] * alert["p99_s"]
    rotaudit = next(
        run for run in latency["runs"] if run["contender"] == "rotaudit" and run["latency_ms"] == alert["latency_ms"]
    )
    assert alert["latency_ms"] == max(params["latency_ms"])
    assert alert["p99_s"] == rotaudit[alert["phase"]]["readable_s"]["p99"]
    assert any(line.startswith("| latency") for line in quick["markdown"].splitlines())


def test_markdown_table_gives_every_target_a_verdict(quick: dict[str, Any]) -> None:
    """results.md is one table with a PASS or MISS for each target in results.json."""
    table = [line for line in quick["markdown"].splitlines() if line.startswith("|")]
    assert table[0].startswith("| benchmark | measure | rotaudit |")
    verdicts = [line for line in table if line.rstrip(" |").endswith(("PASS", "MISS"))]
    targets = quick["results"]["targets"]
    assert targets
    assert len(verdicts) >= len(targets)
    for row in targets:
        assert isinstance(row["pass"], bool)
        assert _positive(row["value"])
