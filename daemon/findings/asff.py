"""Pure builders of AWS Security Finding Format (ASFF) findings about secrets: ids, controls, severity, text.

No I/O, no clock. One finding per (secret, problem), with a deterministic `Id` (`finding_id`), so importing the same
problem again updates the finding instead of adding one, whichever replica imports it.

The required top-level attributes (Security Hub user guide, "Required top-level ASFF attributes";
https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html): AwsAccountId, CreatedAt,
Description, GeneratorId, Id, ProductArn, Resources, SchemaVersion (2018-10-08), Severity, Title, Types,
UpdatedAt. A finding imported with the default product ARN names the calling account
(`arn:aws:securityhub:<region>:<account>:product/<account>/default`) and `AwsAccountId` must be that account
(BatchImportFindings API reference).

What a finding provider may change later (BatchImportFindings API reference; user guide, "BatchImportFindings for
finding providers"): after creation it cannot update Note, UserDefinedFields, VerificationState or Workflow — the
customer's investigation, set with BatchUpdateFindings — and gives Severity and Types through
`FindingProviderFields`. So a new finding carries `Workflow.Status NEW`; a resolved one is said with
`RecordState ARCHIVED` and `Compliance.Status PASSED` and no Workflow; Security Hub itself resets the workflow to
NEW when a finding goes from ARCHIVED back to ACTIVE or from PASSED back to FAILED (Workflow, API reference).

No secret value is ever read by rotaudit, so none can be here: names, ARNs, reasons, step names and ids only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = "2018-10-08"
RESOURCE_TYPE = "AwsSecretsManagerSecret"
GENERATOR_PREFIX = "rotaudit/"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
TITLE_MAX = 256  # AwsSecurityFinding.Title
DESCRIPTION_MAX = 1024  # AwsSecurityFinding.Description
ID_MAX = 512  # AwsSecurityFinding.Id


class Problem(StrEnum):
    """What a finding is about (one finding per secret and problem; also the `GeneratorId`'s last part)."""

    NEEDS_ROTATION = "needs_rotation"  # the age scan flagged it
    ROTATION_FAILED = "rotation_failed"  # a RotationFailed not yet followed by a RotationSucceeded
    NEEDS_HUMAN = "needs_human"  # remediation escalated it


# Security Hub's Secrets Manager controls (user guide, "Security Hub CSPM controls for Secrets Manager"):
# .1 automatic rotation enabled, .2 rotation configured and succeeding, .4 rotated within N days.
ROTATION_ENABLED, ROTATES_SUCCESSFULLY, ROTATED_RECENTLY = "SecretsManager.1", "SecretsManager.2", "SecretsManager.4"
_REASON_CONTROLS = {
    "never_rotated": ROTATED_RECENTLY,
    "older_than_max_age": ROTATED_RECENTLY,
    "rotation_overdue": ROTATES_SUCCESSFULLY,
    "stuck_pending": ROTATES_SUCCESSFULLY,
    "rotation_disabled": ROTATION_ENABLED,
}
_URGENT_REASONS = frozenset({"rotation_overdue", "stuck_pending"})  # rotation is configured and broken


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Which secret: its full ARN (account and region come from it) and name."""

    arn: str
    name: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of one secret, as rotaudit saw it at `observed_at`, and what rotaudit did about it."""

    problem: Problem
    secret: SecretRef
    observed_at: datetime
    reasons: tuple[str, ...] = ()
    action: str = ""  # what rotaudit did, one sentence
    facts: Mapping[str, str] = field(default_factory=dict)  # ids and figures shown in the text and ProductFields


def product_arn(region: str, account: str, partition: str = "aws") -> str:
    """The default product ARN: findings a customer account imports about itself."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def generator_id(problem: Problem) -> str:
    return f"{GENERATOR_PREFIX}{problem.value}"


def finding_id(account: str, region: str, secret_arn: str, problem: Problem) -> str:
    """The same id for the same (account, region, secret, problem), from any replica, in any run."""
    digest = hashlib.sha256(f"{account}\n{region}\n{secret_arn}\n{problem.value}".encode()).hexdigest()[:40]
    return f"rotaudit/{account}/{region}/{problem.value}/{digest}"[:ID_MAX]


def controls(problem: Problem, reasons: Iterable[str] = ()) -> tuple[str, ...]:
    """The Security Hub controls a problem relates to, in control order."""
    if problem is Problem.NEEDS_ROTATION:
        found = {_REASON_CONTROLS[r] for r in reasons if r in _REASON_CONTROLS} or {ROTATED_RECENTLY}
    else:
        found = {ROTATES_SUCCESSFULLY}
    return tuple(sorted(found))


def severity(problem: Problem, reasons: Iterable[str] = ()) -> str:
    """Severity.Label: a human needed is CRITICAL; a broken rotation HIGH; an old secret MEDIUM."""
    if problem is Problem.NEEDS_HUMAN:
        return "CRITICAL"
    if problem is Problem.ROTATION_FAILED or _URGENT_REASONS.intersection(reasons):
        return "HIGH"
    return "MEDIUM"


def iso(moment: datetime) -> str:
    """ASFF timestamps: RFC 3339, UTC, milliseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_TITLES = {
    Problem.NEEDS_ROTATION: "Secret needs rotation: {name}",
    Problem.ROTATION_FAILED: "Secret rotation failed: {name}",
    Problem.NEEDS_HUMAN: "Secret rotation needs a human: {name}",
}
_WHAT = {
    Problem.NEEDS_ROTATION: "rotaudit's age scan found that secret {name} needs rotation ({reasons}).",
    Problem.ROTATION_FAILED: "Secrets Manager reported a failed rotation of secret {name} ({reasons}).",
    Problem.NEEDS_HUMAN: "rotaudit's remediation of a failed rotation of secret {name} needs a human ({reasons}).",
}


def _description(issue: Issue) -> str:
    what = _WHAT[issue.problem].format(name=issue.secret.name, reasons=", ".join(issue.reasons) or "no reason given")
    facts = "; ".join(f"{key}: {value}" for key, value in sorted(issue.facts.items()))
    text = " ".join(part for part in (what, f"Details: {facts}." if facts else "", issue.action) if part)
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _common(issue: Issue, *, home_region: str, updated_at: datetime) -> dict[str, Any]:
    secret = issue.secret
    label = severity(issue.problem, issue.reasons)
    related = list(controls(issue.problem, issue.reasons))
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(secret.account, secret.region, secret.arn, issue.problem),
        "ProductArn": product_arn(home_region, secret.account, secret.partition),
        "GeneratorId": generator_id(issue.problem),
        "AwsAccountId": secret.account,
        "Types": [FINDING_TYPE],
        "UpdatedAt": iso(updated_at),
        "Severity": {"Label": label, "Original": label},
        "FindingProviderFields": {"Severity": {"Label": label, "Original": label}, "Types": [FINDING_TYPE]},
        "Title": _TITLES[issue.problem].format(name=secret.name)[:TITLE_MAX],
        "Description": _description(issue),
        "Resources": [
            {
                "Type": RESOURCE_TYPE,
                "Id": secret.arn,
                "Partition": secret.partition,
                "Region": secret.region,
                "Details": {"AwsSecretsManagerSecret": {"Name": secret.name}},
            }
        ],
        "ProductFields": {
            "rotaudit/problem": issue.problem.value,
            "rotaudit/reasons": ",".join(issue.reasons),
            "rotaudit/observed_at": iso(issue.observed_at),
            "rotaudit/controls": ",".join(related),
        },
        "Compliance": {"RelatedRequirements": related},
    }


def active_finding(issue: Issue, *, home_region: str, created_at: datetime, updated_at: datetime) -> dict[str, Any]:
    """The finding that says the problem is there: ACTIVE, compliance FAILED. `created_at` is when rotaudit first
    saw it (keep the existing finding's on an update); Workflow NEW counts only when the finding is created."""
    finding = _common(issue, home_region=home_region, updated_at=updated_at)
    finding["CreatedAt"] = iso(created_at)
    finding["RecordState"] = "ACTIVE"
    finding["Compliance"]["Status"] = "FAILED"
    finding["Workflow"] = {"Status": "NEW"}
    return finding


def resolved_finding(issue: Issue, *, home_region: str, created_at: datetime, updated_at: datetime) -> dict[str, Any]:
    """The finding that says the problem is gone: ARCHIVED, compliance PASSED; no Workflow (the customer's)."""
    finding = _common(issue, home_region=home_region, updated_at=updated_at)
    finding["CreatedAt"] = iso(created_at)
    finding["RecordState"] = "ARCHIVED"
    finding["Compliance"]["Status"] = "PASSED"
    return finding


def parse_time(text: Any) -> datetime | None:
    """An ASFF timestamp back to a datetime (None when absent or unreadable)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
