"""Each rotation attempt's outcome as a CloudTrail service event, published on the emulator's default event bus.

The shape is AWS's (AWS-FACTS §1, from the user guide's RotationFailed record): detail-type "AWS Service Event
via CloudTrail", source aws.secretsmanager, `detail.eventType` AwsServiceEvent, the secret's ARN in
`detail.additionalEventData.SecretId`, `requestParameters`/`responseElements` null, `resources` [], a fresh
`eventID` per record, `requestID` "Rotation-<ARN>-<uuid>" and, on a failure, `errorMessage` "Error when executing
lambda <function ARN> during <step> step". Inferred: the uuid is one per RotateSecret call and stays the same
across Secrets Manager's retries (AWS does not document it; it behaves as the id of one rotation).

Delivery: AWS puts these events on the account's default bus itself, and refuses PutEvents with an aws.* source
from anyone else. moto accepts it, so the stand-in calls moto's PutEvents in-process, on the default bus of the
secret's account and region: the rules `rotaudit provision` creates route them as AWS's would.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.secretsmanager"
DETAIL_TYPE = "AWS Service Event via CloudTrail"
EVENT_SOURCE = "secretsmanager.amazonaws.com"


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


def publish(detail: dict[str, Any]) -> None:
    """PutEvents on the default bus of the secret's account and region (in-process; see the module docstring)."""
    from moto.events.models import events_backends

    account, region = str(detail["recipientAccountId"]), str(detail["awsRegion"])
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [],
        "EventBusName": "default",
        # No Time: moto's SQS delivery pastes `time` unquoted into its default template, so only its own epoch
        # number parses there (AWS sends an ISO string; the daemon reads detail.eventTime first).
    }
    events_backends[account][region].put_events([entry])
