"""`rotaudit scan --once` and `rotaudit report` as subprocesses against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.aws import Aws
from daemon.cli import main
from daemon.metrics import Metrics
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


def test_scan_once_prints_the_run_summary(endpoint: str) -> None:
    """The seed scenario through the CLI: prints {run_id, checked: 2, flagged: 1} and exits 0."""
    table, region, uid = create_scan_table(endpoint), isolated_region(), uuid.uuid4().hex[:6]
    sm = client("secretsmanager", endpoint, region)
    create_secret(sm, f"cli{uid}-fresh", {"Managed": "true"})
    create_secret(sm, f"cli{uid}-stale", {"Managed": "true"})
    create_secret(sm, f"cli{uid}-ignored", {"Managed": "false"})
    create_secret(sm, f"cli{uid}-trap", {"ManagedBy": "true"})
    backdate(f"cli{uid}-stale", 31, region)

    result = cli(endpoint, table, "scan", "--once", ROTAUDIT_SCAN_TARGETS=json.dumps([{"regions": [region]}]))

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == {"run_id": printed["run_id"], "checked": 2, "flagged": 1}
    assert [run["run_id"] for run in table_items(endpoint, table, "scan_run")] == [printed["run_id"]]
    assert sorted(row["secret_name"] for row in table_items(endpoint, table, "scan")) == [
        f"cli{uid}-fresh",
        f"cli{uid}-stale",
    ]


def test_scan_needs_once(capsys: pytest.CaptureFixture[str]) -> None:
    """`rotaudit scan` without --once is a usage error: the daemon owns the schedule."""
    with pytest.raises(SystemExit) as exited:
        main(["scan"])
    assert exited.value.code == 2
    assert "--once" in capsys.readouterr().err


def _two_runs(endpoint: str, table: str, tag: str) -> tuple[ScanResult, ScanResult]:
    """A run today (one old secret, one fresh) and one whose clock reads 60 days later (both old)."""

    async def go() -> tuple[ScanResult, ScanResult]:
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            first = await Scanner(aws, table, Metrics(), tag=tag).run_once()
            later = datetime.now(UTC) + timedelta(days=60)
            second = await Scanner(aws, table, Metrics(), tag=tag, now=lambda: later).run_once()
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

    latest = cli(endpoint, table, "report", "--json")
    assert latest.returncode == 0, latest.stderr
    answer: dict[str, Any] = json.loads(latest.stdout)
    assert (answer["run"]["run_id"], answer["run"]["checked"], answer["run"]["flagged"]) == (second.run_id, 2, 2)
    assert {row["secret_name"]: row["status"] for row in answer["secrets"]} == {
        old: "needs_rotation",
        fresh: "needs_rotation",
    }

    flagged = cli(endpoint, table, "report", "--run", first.run_id, "--status", "needs_rotation", "--json")
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
