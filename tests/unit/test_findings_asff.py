"""The ASFF builders: deterministic ids, the required attributes, controls and severity, no secret value."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from daemon.findings.asff import (
    DESCRIPTION_MAX,
    Issue,
    Problem,
    SecretRef,
    active_finding,
    controls,
    finding_id,
    resolved_finding,
    severity,
)

ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders/db-AbCdEf"
SECRET = SecretRef(ARN, "orders/db")
SEEN = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
LATER = datetime(2030, 1, 3, tzinfo=UTC)
REQUIRED = {
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
}


def issue(problem: Problem = Problem.NEEDS_ROTATION, **overrides: object) -> Issue:
    fields: dict[str, object] = {
        "reasons": ("never_rotated", "older_than_max_age"),
        "action": "rotaudit recorded it.",
        "facts": {"age_days": "41.50", "scan_run": "20300102T030000Z"},
    }
    return Issue(problem, SECRET, SEEN, **(fields | overrides))  # type: ignore[arg-type]


def test_the_id_is_the_same_for_the_same_secret_and_problem() -> None:
    """Two builds of one (account, region, secret, problem) share an id: an import updates, never duplicates."""
    first = active_finding(issue(), home_region="eu-west-1", created_at=SEEN, updated_at=SEEN)
    second = resolved_finding(issue(reasons=()), home_region="eu-west-1", created_at=SEEN, updated_at=LATER)
    assert first["Id"] == second["Id"] == finding_id("111122223333", "eu-west-1", ARN, Problem.NEEDS_ROTATION)


@pytest.mark.parametrize(
    "other",
    [
        ("444455556666", "eu-west-1", ARN, Problem.NEEDS_ROTATION),
        ("111122223333", "us-east-1", ARN, Problem.NEEDS_ROTATION),
        ("111122223333", "eu-west-1", ARN.replace("orders", "billing"), Problem.NEEDS_ROTATION),
        ("111122223333", "eu-west-1", ARN, Problem.ROTATION_FAILED),
        ("111122223333", "eu-west-1", ARN, Problem.NEEDS_HUMAN),
    ],
    ids=["account", "region", "secret", "failed", "human"],
)
def test_the_id_differs_when_anything_it_names_differs(other: tuple[str, str, str, Problem]) -> None:
    """Another account, region, secret or problem is another finding."""
    assert finding_id(*other) != finding_id("111122223333", "eu-west-1", ARN, Problem.NEEDS_ROTATION)


def test_an_active_finding_has_every_required_attribute_and_names_the_secret() -> None:
    """SchemaVersion 2018-10-08, the default product of the secret's account, the secret's ARN as the resource."""
    found = active_finding(issue(), home_region="eu-west-1", created_at=SEEN, updated_at=LATER)
    assert set(found) >= REQUIRED
    assert found["SchemaVersion"] == "2018-10-08"
    assert found["ProductArn"] == "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
    assert found["AwsAccountId"] == "111122223333"
    assert found["GeneratorId"] == "rotaudit/needs_rotation"
    assert (found["CreatedAt"], found["UpdatedAt"]) == ("2030-01-02T03:04:05.678Z", "2030-01-03T00:00:00.000Z")
    assert found["Resources"] == [
        {
            "Type": "AwsSecretsManagerSecret",
            "Id": ARN,
            "Partition": "aws",
            "Region": "eu-west-1",
            "Details": {"AwsSecretsManagerSecret": {"Name": "orders/db"}},
        }
    ]
    assert (found["RecordState"], found["Compliance"]["Status"], found["Workflow"]) == (
        "ACTIVE",
        "FAILED",
        {"Status": "NEW"},
    )
    assert found["FindingProviderFields"]["Severity"] == found["Severity"]


def test_a_resolved_finding_is_archived_and_passed_and_leaves_workflow_to_the_customer() -> None:
    """Resolution is RecordState ARCHIVED + Compliance PASSED; Workflow is not the provider's to update."""
    found = resolved_finding(issue(), home_region="eu-west-1", created_at=SEEN, updated_at=LATER)
    assert set(found) >= REQUIRED
    assert (found["RecordState"], found["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    assert "Workflow" not in found


@pytest.mark.parametrize(
    ("problem", "reasons", "expected_controls", "expected_severity"),
    [
        (Problem.NEEDS_ROTATION, ("older_than_max_age",), ("SecretsManager.4",), "MEDIUM"),
        (
            Problem.NEEDS_ROTATION,
            ("never_rotated", "rotation_disabled"),
            ("SecretsManager.1", "SecretsManager.4"),
            "MEDIUM",
        ),
        (Problem.NEEDS_ROTATION, ("rotation_overdue",), ("SecretsManager.2",), "HIGH"),
        (
            Problem.NEEDS_ROTATION,
            ("stuck_pending", "older_than_max_age"),
            ("SecretsManager.2", "SecretsManager.4"),
            "HIGH",
        ),
        (Problem.NEEDS_ROTATION, (), ("SecretsManager.4",), "MEDIUM"),
        (Problem.ROTATION_FAILED, ("setSecret",), ("SecretsManager.2",), "HIGH"),
        (Problem.NEEDS_HUMAN, ("strategy_unknown",), ("SecretsManager.2",), "CRITICAL"),
    ],
)
def test_controls_and_severity_follow_the_problem_and_its_reasons(
    problem: Problem, reasons: tuple[str, ...], expected_controls: tuple[str, ...], expected_severity: str
) -> None:
    """.1 rotation enabled, .2 rotates successfully, .4 rotated within the limit; a human needed is CRITICAL."""
    assert controls(problem, reasons) == expected_controls
    assert severity(problem, reasons) == expected_severity
    found = active_finding(issue(problem, reasons=reasons), home_region="eu-west-1", created_at=SEEN, updated_at=SEEN)
    assert found["Compliance"]["RelatedRequirements"] == list(expected_controls)
    assert found["Severity"]["Label"] == expected_severity


def test_the_description_says_what_was_found_and_what_rotaudit_did_within_the_limit() -> None:
    """Reasons, figures and the action are in the text; a long action is cut to the ASFF limit."""
    found = active_finding(issue(), home_region="eu-west-1", created_at=SEEN, updated_at=SEEN)
    assert "never_rotated, older_than_max_age" in found["Description"]
    assert "age_days: 41.50" in found["Description"]
    assert found["Description"].endswith("rotaudit recorded it.")
    long = active_finding(issue(action="x" * 5000), home_region="eu-west-1", created_at=SEEN, updated_at=SEEN)
    assert len(long["Description"]) == DESCRIPTION_MAX


def test_a_finding_holds_only_what_it_was_given_never_a_value() -> None:
    """Every string in a finding is built from names, ids, reasons and figures: a value never given cannot appear;
    the builders take no value to begin with (rotaudit never reads one outside sync)."""
    found = active_finding(issue(), home_region="eu-west-1", created_at=SEEN, updated_at=SEEN)
    text = json.dumps(found)
    given = {ARN, "orders/db", "41.50", "20300102T030000Z", "never_rotated", "older_than_max_age"}
    assert all(piece in text for piece in given)
    assert set(Issue.__dataclass_fields__) == {"problem", "secret", "observed_at", "reasons", "action", "facts"}
    assert set(SecretRef.__dataclass_fields__) == {"arn", "name"}
