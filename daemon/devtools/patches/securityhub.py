"""Pinned moto patches for Security Hub: `GetFindings` filters and `BatchImportFindings`'s rules for providers.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import threading
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require

# --- securityhub-findings-as-aws ------------------------------------------------------------------------------
# WHY: moto 5.2's GetFindings ignores `Filters` (it returns every finding), and its BatchImportFindings merges an
# update into the stored finding as it comes. AWS (BatchImportFindings API reference and the user guide's
# "BatchImportFindings for finding providers"):
# - "After a finding is created, BatchImportFindings cannot be used to update ... Note, UserDefinedFields,
#   VerificationState, Workflow": those belong to customers (BatchUpdateFindings);
# - Workflow.Status starts at NEW and is reset to NEW when RecordState goes ARCHIVED -> ACTIVE or
#   Compliance.Status goes PASSED -> FAILED/WARNING/NOT_AVAILABLE (Workflow, API reference);
# - a batch holds at most 100 findings; a finding without a required attribute fails on its own, in FailedFindings;
#   a finding for another account than the caller's (default product ARN) fails with AccessDenied.
# The stand-in applies the StringFilter comparisons rotaudit uses (EQUALS, PREFIX, NOT_EQUALS) on top-level and
# Resources fields; other filters are refused loudly rather than ignored.
_REQUIRED = (
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Title",
    "Types",
    "UpdatedAt",
)
_CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
_FILTER_PATHS = {
    "Id": ("Id",),
    "ProductArn": ("ProductArn",),
    "GeneratorId": ("GeneratorId",),
    "AwsAccountId": ("AwsAccountId",),
    "RecordState": ("RecordState",),
    "WorkflowStatus": ("Workflow", "Status"),
    "ComplianceStatus": ("Compliance", "Status"),
    "ResourceId": ("Resources", "Id"),
    "ResourceType": ("Resources", "Type"),
}
_lock = threading.Lock()


def _values(finding: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    if path[0] == "Resources":
        return [str(r.get(path[1], "")) for r in finding.get("Resources", [])]
    value: Any = finding
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return [value] if isinstance(value, str) else []


def _matches(finding: dict[str, Any], filters: dict[str, list[dict[str, str]]]) -> bool:
    for name, conditions in filters.items():
        if name not in _FILTER_PATHS:
            raise ValueError(f"the Security Hub stand-in does not implement the {name} filter")
        values = _values(finding, _FILTER_PATHS[name])
        positive = [c for c in conditions if c.get("Comparison") in ("EQUALS", "PREFIX")]
        negative = [c for c in conditions if c.get("Comparison") == "NOT_EQUALS"]
        if len(positive) + len(negative) != len(conditions):
            raise ValueError(f"the Security Hub stand-in does not implement {conditions} on {name}")

        def hit(value: str, condition: dict[str, str]) -> bool:
            wanted = condition["Value"]
            return value == wanted if condition["Comparison"] != "PREFIX" else value.startswith(wanted)

        if positive and not any(hit(v, c) for v in values for c in positive):
            return False
        if any(v == c["Value"] for v in values for c in negative):
            return False
    return True


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **{k: v for k, v in new.items() if k not in _CUSTOMER_FIELDS}}
    reopened = old.get("RecordState") == "ARCHIVED" and merged.get("RecordState", "ACTIVE") == "ACTIVE"
    failing = old.get("Compliance", {}).get("Status") == "PASSED" and merged.get("Compliance", {}).get(
        "Status", "PASSED"
    ) in ("FAILED", "WARNING", "NOT_AVAILABLE")
    if (reopened or failing) and merged.get("Workflow", {}).get("Status") in ("NOTIFIED", "RESOLVED"):
        merged["Workflow"] = {"Status": "NEW"}
    return merged


def patch_findings(patch: str) -> None:
    from moto.securityhub import models
    from moto.securityhub.exceptions import InvalidInputException
    from moto.utilities.paginator import paginate

    backend_class = require(models, patch, "SecurityHubBackend")
    finding_class = require(models, patch, "Finding")
    current = require(backend_class, patch, "batch_import_findings", "get_findings", "PAGINATION_MODEL")
    if getattr(current, MARK, None):
        return
    if "get_findings" not in backend_class.PAGINATION_MODEL:
        raise broken(patch, "SecurityHubBackend.PAGINATION_MODEL has no get_findings")

    @paginate(pagination_model=backend_class.PAGINATION_MODEL)
    def get_findings(
        self: Any,
        filters: dict[str, Any] | None = None,
        sort_criteria: list[dict[str, str]] | None = None,
        max_results: int | None = None,
    ) -> list[dict[str, Any]]:
        if max_results is not None and not 1 <= int(max_results) <= 100:
            raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
        try:
            with _lock:
                return [dict(f.data) for f in self.findings if _matches(f.data, filters or {})]
        except ValueError as exc:
            raise InvalidInputException(op="GetFindings", msg=str(exc)) from None

    def batch_import_findings(self: Any, findings: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
        if not 1 <= len(findings) <= 100:
            raise InvalidInputException(op="BatchImportFindings", msg="Findings must hold 1 to 100 findings")
        failed: list[dict[str, Any]] = []
        with _lock:
            by_id = {f.id: f for f in self.findings}
            for data in findings:
                fid = str(data.get("Id", ""))
                missing = [key for key in _REQUIRED if key not in data]
                if not self.enabled:
                    failed.append({"Id": fid, "ErrorCode": "InvalidAccess", "ErrorMessage": "Security Hub is off"})
                elif missing:
                    failed.append({"Id": fid, "ErrorCode": "InvalidInput", "ErrorMessage": f"missing {missing}"})
                elif data["AwsAccountId"] != self.account_id or not data.get("Resources"):
                    failed.append({"Id": fid, "ErrorCode": "AccessDenied", "ErrorMessage": "not this account"})
                elif (existing := by_id.get(fid)) is not None:
                    existing.data = _merged(existing.data, data)
                else:
                    stored = {"RecordState": "ACTIVE", **data, "Workflow": data.get("Workflow") or {"Status": "NEW"}}
                    by_id[fid] = finding_class(fid, stored)
                    self.findings.append(by_id[fid])
        return len(failed), len(findings) - len(failed), failed

    install(backend_class, get_findings, patch)
    install(backend_class, batch_import_findings, patch)
