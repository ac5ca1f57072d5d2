"""The claim's items in the audit table: keys, wake-ups, the history copy, and the update builders they share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daemon.remediation.outcome import ACTING
from daemon.remediation.state import Failure
from daemon.table import PERIOD_ATTRIBUTE, period_bucket, secret_pk, to_dynamo, utc_iso

DUE_PK = "remediation-due"
# Copied from the claim onto the history item.
_HISTORY_FIELDS = (
    "stage",
    "reason",
    "plan",
    "results",
    "diagnosis",
    "retry_at",
    "recovered_by",
    "dry_run",
    "advice",
    "may_hold",
    "failed_passes",
    "error",
    "results_dropped",
    "failed_step",
    "account",
    "region",
    "fence",
    "holder",
    "updated_at",
)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def claim_key(secret_arn: str, rotation_id: str) -> dict[str, str]:
    return {"pk": f"remediation#{secret_arn}", "sk": f"claim#{rotation_id}"}


def history_item(claim_item: dict[str, Any]) -> dict[str, Any]:
    """The claim as `rotaudit history` shows it, next to the failure's event items."""
    item = {
        "pk": secret_pk(claim_item["secret_arn"]),
        "sk": claim_item["history_sk"],
        "kind": "remediation",
        "secret_arn": claim_item["secret_arn"],
        "secret_name": claim_item["name"],
        "rotation_id": claim_item["rotation_id"],
        "event_time": claim_item["failed_at"],
        "status": claim_item.get("stage", ACTING),
        PERIOD_ATTRIBUTE: period_bucket(claim_item["secret_arn"], claim_item["failed_at"]),  # `rotaudit evidence`
    }
    item.update({key: claim_item[key] for key in _HISTORY_FIELDS if claim_item.get(key) not in (None, "", [], {})})
    return item


def failure_fields(failure: Failure) -> dict[str, Any]:
    return {
        "failed_step": failure.failed_step,
        "event_id": failure.event_id,
        "account": failure.account,
        "region": failure.region,
    }


def wake_item(due_at: datetime, failure: Failure) -> dict[str, Any]:
    return {
        "pk": DUE_PK,
        "sk": f"{utc_iso(due_at)}#{failure.secret_arn}#{failure.rotation_id}",
        "secret_arn": failure.secret_arn,
        "rotation_id": failure.rotation_id,
    }


def key_of(item: dict[str, Any]) -> dict[str, str]:
    return {"pk": item["pk"], "sk": item["sk"]}


def delete_action(table: str, key: dict[str, str]) -> dict[str, Any]:
    return {"Delete": {"TableName": table, "Key": to_dynamo(key)}}


def update_action(
    table: str, key: dict[str, str], updates: dict[str, Any], removals: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """An UpdateItem/transaction Update with every attribute name behind a placeholder (no reserved-word trouble)."""
    names = {f"#s{i}": name for i, name in enumerate(updates)}
    names.update({f"#r{i}": name for i, name in enumerate(removals)})
    expression = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(updates)))
    if removals:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removals)))
    values = to_dynamo({f":s{i}": value for i, value in enumerate(updates.values())})
    return {
        "TableName": table,
        "Key": to_dynamo(key),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
