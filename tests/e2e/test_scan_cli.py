"""`rotaudit scan` and `rotaudit report` as subprocesses against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from daemon.aws import Aws
from daemon.scan.metrics import ScanMetrics
from daemon.scan.scanner import Scanner, ScanResult
from tests.support import FAKE_CREDENTIALS, REGION, ROOT, rotaudit_cmd
from tests.support.scan import backdate, client, create_scan_table, create_secret, isolated_region, table_items


def cli(endpoint: str, table: str, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "ROTAUDIT_AUDIT_TABLE": table,
            **env_extra,
        }
    )
    return subprocess.run(rotaudit_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_scan_prints_the_run_summary(endpoint: str) -> None:
    """The seed scenario through the CLI: `--output json` prints {run_id, checked: 2, flagged: 1, ...}, exits 0."""
    table, region, uid = create_scan_table(endpoint), isolated_region(), uuid.uuid4().hex[:6]
    sm = client("secretsmanager", endpoint, region)
    create_secret(sm, f"cli{uid}-fresh", {"Managed": "true"})
    create_secret(sm, f"cli{uid}-stale", {"Managed": "true"})
    create_secret(sm, f"cli{uid}-ignored", {"Managed": "false"})
    create_secret(sm, f"cli{uid}-trap", {"ManagedBy": "true"})
    backdate(f"cli{uid}-stale", 31, region)

    targets = json.dumps([{"regions": [region]}])
    result = cli(endpoint, table, "scan", "--output", "json", ROTAUDIT_SCAN_TARGETS=targets)

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == {
        "run_id": printed["run_id"],
        "outcome": "succeeded",
        "checked": 2,
        "flagged": 1,
        "failed_scopes": [],
    }
    assert [run["run_id"] for run in table_items(endpoint, table, "scan_run")] == [printed["run_id"]]
    assert sorted(row["secret_name"] for row in table_items(endpoint, table, "scan")) == [
        f"cli{uid}-fresh",
        f"cli{uid}-stale",
    ]


def test_scan_once_is_an_accepted_alias_and_text_is_the_default(endpoint: str) -> None:
    """`rotaudit scan --once` (as deploy/local.sh and runbooks say) still runs one scan; it prints text, not JSON."""
    table, region = create_scan_table(endpoint), isolated_region()
    create_secret(client("secretsmanager", endpoint, region), f"once{uuid.uuid4().hex[:6]}", {"Managed": "true"})

    result = cli(endpoint, table, "scan", "--once", ROTAUDIT_SCAN_TARGETS=json.dumps([{"regions": [region]}]))

    assert result.returncode == 0, result.stderr
    (run,) = table_items(endpoint, table, "scan_run")
    assert result.stdout.split()[:3] == ["scan", "run", f"{run['run_id']}:"]


def test_scan_verbose_logs_the_run_on_stderr(endpoint: str) -> None:
    """-v (before the command) adds the scanner's info log lines on stderr; without it stderr stays quiet."""
    table, region = create_scan_table(endpoint), isolated_region()
    targets = json.dumps([{"regions": [region]}])

    quiet = cli(endpoint, table, "scan", ROTAUDIT_SCAN_TARGETS=targets)
    verbose = cli(endpoint, table, "-v", "scan", ROTAUDIT_SCAN_TARGETS=targets)

    assert (quiet.returncode, verbose.returncode) == (0, 0), verbose.stderr
    assert quiet.stderr == ""
    assert "scan.run_finished" in verbose.stderr


def _two_runs(endpoint: str, table: str, tag: str) -> tuple[ScanResult, ScanResult]:
    """A run today (one old secret, one fresh) and one whose clock reads 60 days later (both old)."""

    async def go() -> tuple[ScanResult, ScanResult]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            first = await Scanner(aws, table, ScanMetrics(CollectorRegistry()), tag=tag).run_once()
            later = datetime.now(UTC) + timedelta(days=60)
            second = await Scanner(aws, table, ScanMetrics(CollectorRegistry()), tag=tag, now=lambda: later).run_once()
            return first, second

    return asyncio.run(go())


def test_report_answers_from_a_table_with_several_runs(endpoint: str) -> None:
    """`report` reads the latest run or a named one, filtered by status, with key conditions only."""
    table, uid = create_scan_table(endpoint), uuid.uuid4().hex[:6]
    key = f"Report{uid}"
    sm = client("secretsmanager", endpoint)
    old, fresh = f"rep{uid}-old", f"rep{uid}-fresh"
    create_secret(sm, old, {key: "yes"})
    create_secret(sm, fresh, {key: "yes"})
    backdate(old, 40)
    first, second = _two_runs(endpoint, table, f"{key}=yes")

    latest = cli(endpoint, table, "report", "--output", "json")
    assert latest.returncode == 0, latest.stderr
    answer: dict[str, Any] = json.loads(latest.stdout)
    assert (answer["run"]["run_id"], answer["run"]["checked"], answer["run"]["flagged"]) == (second.run_id, 2, 2)
    assert {row["secret_name"]: row["status"] for row in answer["secrets"]} == {
        old: "needs_rotation",
        fresh: "needs_rotation",
    }

    flagged = cli(endpoint, table, "report", "--run", first.run_id, "--status", "needs_rotation", "--output", "json")
    assert flagged.returncode == 0, flagged.stderr
    rows = json.loads(flagged.stdout)["secrets"]
    assert [(row["secret_name"], row["reasons"], row["account"], row["region"]) for row in rows] == [
        (old, ["never_rotated", "older_than_max_age", "rotation_disabled"], "123456789012", REGION)
    ]
    assert rows[0]["age_days"] == 40

    text = cli(endpoint, table, "report", "--run", first.run_id)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"run {first.run_id} (once, ")
    assert lines[1].split() == ["STATUS", "AGE_DAYS", "SECRET", "ACCOUNT", "REGION", "REASONS"]
    assert [line.split()[:3] for line in lines[2:]] == [["needs_rotation", "40.00", old], ["ok", "0.00", fresh]]

    missing = cli(endpoint, table, "report", "--run", "20000101T000000Z")
    assert missing.returncode == 1
    assert "no scan run 20000101T000000Z" in missing.stderr


def test_report_fail_on_needs_rotation_gates_a_pipeline(endpoint: str) -> None:
    """`--fail-on needs_rotation` exits 4 after printing when the run flagged a secret, 0 when it flagged none."""
    table, uid = create_scan_table(endpoint), uuid.uuid4().hex[:6]
    key = f"Gate{uid}"
    sm = client("secretsmanager", endpoint)
    create_secret(sm, f"gate{uid}-old", {key: "yes"})
    backdate(f"gate{uid}-old", 40)
    first, second = _two_runs(endpoint, table, f"{key}=yes")
    assert (first.flagged, second.flagged) == (1, 1)
    clean_table = create_scan_table(endpoint)
    create_secret(sm, f"gate{uid}-new", {f"{key}b": "yes"})

    async def clean_run() -> ScanResult:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            return await Scanner(aws, clean_table, ScanMetrics(CollectorRegistry()), tag=f"{key}b=yes").run_once()

    assert asyncio.run(clean_run()).flagged == 0

    gated = cli(endpoint, table, "report", "--fail-on", "needs_rotation", "--output", "json")
    shown_ok_only = cli(endpoint, table, "report", "--status", "ok", "--fail-on", "needs_rotation")
    passed = cli(endpoint, clean_table, "report", "--fail-on", "needs_rotation", "--output", "json")
    ungated = cli(endpoint, table, "report")

    assert (gated.returncode, shown_ok_only.returncode, passed.returncode, ungated.returncode) == (4, 4, 0, 0)
    assert json.loads(gated.stdout)["run"]["flagged"] == 1  # the report is printed before the exit code says so
    assert json.loads(passed.stdout)["run"]["flagged"] == 0


def test_report_json_flag_is_a_deprecated_alias(endpoint: str) -> None:
    """`report --json` prints what `--output json` prints, with a deprecation note on stderr that -q silences."""
    table, uid = create_scan_table(endpoint), uuid.uuid4().hex[:6]
    create_secret(client("secretsmanager", endpoint), f"alias{uid}", {f"Alias{uid}": "yes"})
    _two_runs(endpoint, table, f"Alias{uid}=yes")

    old = cli(endpoint, table, "report", "--json")
    new = cli(endpoint, table, "report", "--output", "json")
    quiet = cli(endpoint, table, "-q", "report", "--json")

    assert (old.returncode, new.returncode, quiet.returncode) == (0, 0, 0)
    assert json.loads(old.stdout) == json.loads(new.stdout) == json.loads(quiet.stdout)
    assert "--output json" in old.stderr
    assert (new.stderr, quiet.stderr) == ("", "")


@pytest.mark.parametrize("command", [("scan",), ("report",), ("history", "app/db")])
def test_a_missing_table_says_what_to_do(endpoint: str, command: tuple[str, ...]) -> None:
    """No bare ResourceNotFoundException: exit 3, naming the table, its region and how to create or choose one."""
    missing = f"missing-{uuid.uuid4().hex[:8]}"

    result = cli(endpoint, missing, *command, ROTAUDIT_SCAN_TARGETS=json.dumps([{"regions": [isolated_region()]}]))

    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert missing in line
    assert REGION in line
    assert "rotaudit provision" in line
    assert "--table" in line
