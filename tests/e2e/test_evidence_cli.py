"""`rotaudit evidence` as a subprocess over a hand-built history: CSV, JSON and HTML agree with it and each other."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pytest

from daemon.audit import event_item
from daemon.events import RotationEvent
from daemon.table import to_dynamo
from tests.e2e.test_scan_cli import cli
from tests.support.evidence import (
    EXPECTED_FLEET,
    EXPECTED_ITEMS_READ,
    EXPECTED_ITEMS_USED,
    EXPECTED_SECRETS,
    SINCE,
    UNTIL,
    Figures,
    arn,
    at,
    write_history,
)
from tests.support.scan import client

PERIOD = ("--since", SINCE, "--until", UNTIL)


@pytest.fixture
def history(endpoint: str) -> str:
    table = f"evd{uuid.uuid4().hex[:10]}-audit"
    write_history(endpoint, table)
    return table


def evidence(endpoint: str, table: str, *args: str) -> str:
    result = cli(endpoint, table, "evidence", *PERIOD, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_name(secrets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["secret_name"]: {k: v for k, v in s.items() if k not in ("secret_name", "secret_arn")} for s in secrets}


def test_json_matches_the_hand_computed_history(endpoint: str, history: str) -> None:
    """Every fleet and secret figure is what the fixture's history says; bravo's hourly scan rows are never read."""
    doc = json.loads(evidence(endpoint, history, "--output", "json"))
    assert {k: doc["fleet"][k] for k in EXPECTED_FLEET} == EXPECTED_FLEET
    assert by_name(doc["secrets"]) == EXPECTED_SECRETS
    assert [s["secret_name"] for s in doc["secrets"]] == ["bravo", "charlie", "alpha"]  # out of compliance first
    assert doc["reads"]["items"] == EXPECTED_ITEMS_READ
    assert doc["manifest"]["items"] == EXPECTED_ITEMS_USED
    assert [(f["secret_name"], f["recovery_s"]) for f in doc["failures"]] == [("bravo", 21600.0), ("charlie", None)]


def test_csv_and_html_agree_with_json(endpoint: str, history: str) -> None:
    """The CSV's rows and the HTML's figures are the JSON's; all three carry one manifest digest."""
    doc = json.loads(evidence(endpoint, history, "--output", "json"))
    text = evidence(endpoint, history, "--output", "csv")
    rows = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    secrets = {r["secret_name"]: r for r in rows if r["scope"] == "secret"}
    (fleet,) = [r for r in rows if r["scope"] == "fleet"]
    assert [r["secret_name"] for r in rows if r["scope"] == "secret"][2] == "alpha"  # compliant ones last
    for name, expected in by_name(doc["secrets"]).items():
        row = secrets[name]
        assert int(row["scan_runs"]) == expected["scan_runs"]
        assert int(row["compliant_runs"]) == expected["compliant_runs"]
        assert int(row["rotations_failed"]) == expected["rotations_failed"]
        assert float(row["max_over_age_days"]) == expected["max_over_age_days"]
        assert float(row["compliant_share"]) == expected["compliant_share"]
        assert row["ever_out_of_compliance"] == str(expected["ever_out_of_compliance"]).lower()
    assert int(fleet["rotations_failed"]) == doc["fleet"]["rotations_failed"]
    assert float(fleet["compliant_share"]) == doc["fleet"]["compliant_share"]
    assert f"# manifest,sha256,{doc['manifest']['sha256']}\n" in text

    page = Figures()
    page.feed(evidence(endpoint, history, "--output", "html"))
    assert page.figures["manifest_sha256"] == doc["manifest"]["sha256"]
    for key in ("secrets", "secrets_ever_out_of_compliance", "rotations_failed", "scan_runs", "recovery_max_s"):
        assert float(page.figures[key]) == doc["fleet"][key]
    assert float(page.rows["charlie"]["age_days_at_end"]) == doc["secrets"][1]["age_days_at_end"]
    assert page.rows["bravo"]["compliant_share"] == str(doc["secrets"][0]["compliant_share"])


def test_the_manifest_changes_only_with_the_period_content(endpoint: str, history: str) -> None:
    """A rerun gives the same digest; an event after the period leaves it alone; one inside the period changes it."""
    first = json.loads(evidence(endpoint, history, "--output", "json"))["manifest"]["sha256"]
    assert json.loads(evidence(endpoint, history, "--output", "json"))["manifest"]["sha256"] == first
    ddb = client("dynamodb", endpoint)

    def add(when: str, event_id: str) -> str:
        event = RotationEvent(
            "RotationStarted", "service", arn("alpha"), "alpha", event_id, event_id, at(when), None, None, None,
            None, None,
        )  # fmt: skip
        ddb.put_item(TableName=history, Item=to_dynamo(event_item(event, at(when))))
        return str(json.loads(evidence(endpoint, history, "--output", "json"))["manifest"]["sha256"])

    assert add("07-15T08:00", "after") == first
    assert add("07-14T08:00", "inside") != first


def test_secret_filter_reports_one_secret(endpoint: str, history: str) -> None:
    """`--secret bravo` (by name) reports bravo alone, with the same figures as in the fleet report."""
    doc = json.loads(evidence(endpoint, history, "--output", "json", "--secret", "bravo"))
    assert by_name(doc["secrets"]) == {"bravo": EXPECTED_SECRETS["bravo"]}
    assert doc["manifest"]["parameters"]["secrets"] == [arn("bravo")]


def test_bad_period_exits_78_naming_the_flag(endpoint: str, history: str) -> None:
    """A --since after --until is a configuration error naming both."""
    result = cli(endpoint, history, "evidence", "--since", "2026-08-01", "--until", "2026-07-01")
    assert result.returncode == 78
    assert "--since" in result.stderr
