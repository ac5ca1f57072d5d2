"""Rotation outcomes (CloudTrail service events) and label moves (native events), on the emulator's default bus.

The shape is AWS's (AWS-FACTS §1, from the user guide's RotationFailed record): detail-type "AWS Service Event
via CloudTrail", source aws.secretsmanager, `detail.eventType` AwsServiceEvent, the secret's ARN in
`detail.additionalEventData.SecretId`, `requestParameters`/`responseElements` null, `resources` [], a fresh
`eventID` per record, `requestID` "Rotation-<ARN>-<uuid>" and, on a failure, `errorMessage` "Error when executing
lambda <function ARN> during <step> step". Inferred: the uuid is one per RotateSecret call and stays the same
across Secrets Manager's retries (AWS does not document it; it behaves as the id of one rotation).

Delivery: AWS puts these events on the account's default bus itself, and refuses PutEvents with an aws.* source
from anyone else. moto accepts it, so the stand-in calls moto's PutEvents in-process, on the default bus of the
secret's account and region: the rules `rotaudit provision` creates route them as AWS's would.

Label moves: Secrets Manager "sends a Secret Label Updated event when a staging label moves to a new version of a
secret, for all labels except AWSPENDING and AWSPREVIOUS" (user guide, "Secret Label Updated event"), custom labels
included ("Secret event notifications"). The shape is the guide's example: detail-type "Secret Label Updated",
`resources` [the secret's ARN], `detail` {`name`, `labelUpdated` (one label), `versionId`}. These are native events:
no CloudTrail record, no eventID, no requestID. Inferred: one event per label moved, published as the move is
made; none for a label only removed, nor for the first version CreateSecret makes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.secretsmanager"
DETAIL_TYPE = "AWS Service Event via CloudTrail"
LABEL_DETAIL_TYPE = "Secret Label Updated"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
UNANNOUNCED_LABELS = frozenset({"AWSPENDING", "AWSPREVIOUS"})  # labels whose moves send no Secret Label Updated


def failure_message(function_arn: str, step: str) -> str:
    """RotationFailed's errorMessage (AWS-FACTS §1)."""
    return f"Error when executing lambda {function_arn} during {step} step"


def service_event_detail(
    event_name: str,
    secret_arn: str,
    request_uuid: str,
    *,
    error_message: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The CloudTrail record of one rotation event, as the user guide shows it."""
    _, _, _, region, account, _ = secret_arn.split(":", 5)
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": EVENT_SOURCE},
        "eventTime": moment,
        "eventSource": EVENT_SOURCE,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": EVENT_SOURCE,
        "userAgent": EVENT_SOURCE,
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": {"SecretId": secret_arn},
        "requestID": f"Rotation-{secret_arn}-{request_uuid}",
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_message is not None:
        detail["errorMessage"] = error_message
    return detail


def moved_labels(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str]]:
    """(label, version id) for each announced label on a version it was not on before (label -> version maps)."""
    return sorted(
        (label, version)
        for label, version in after.items()
        if label not in UNANNOUNCED_LABELS and before.get(label) != version
    )


def label_updated_entry(secret_arn: str, name: str, label: str, version_id: str) -> dict[str, Any]:
    """The PutEvents entry of one Secret Label Updated event (the user guide's example, field for field)."""
    detail = {"name": name, "labelUpdated": label, "versionId": version_id}
    return {
        "Source": SOURCE,
        "DetailType": LABEL_DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [secret_arn],
        "EventBusName": "default",
        # No Time, as below: moto stamps the envelope's `time` itself (whole seconds), which the daemon reads.
    }


def publish(detail: dict[str, Any]) -> None:
    """PutEvents on the default bus of the secret's account and region (in-process; see the module docstring)."""
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [],
        "EventBusName": "default",
        # No Time: moto's SQS delivery pastes `time` unquoted into its default template, so only its own epoch
        # number parses there (AWS sends an ISO string; the daemon reads detail.eventTime first).
    }
    put_entry(str(detail["recipientAccountId"]), str(detail["awsRegion"]), entry)


def publish_label_updated(secret_arn: str, name: str, label: str, version_id: str) -> None:
    """A Secret Label Updated event for `label` now on `version_id`, on the secret's account and region's bus."""
    _, _, _, region, account, _ = secret_arn.split(":", 5)
    put_entry(account, region, label_updated_entry(secret_arn, name, label, version_id))


def put_entry(account: str, region: str, entry: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    events_backends[account][region].put_events([entry])
