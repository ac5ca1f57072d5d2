"""`rotaudit emit`: publish a real-shaped Secrets Manager event, as AWS would, to drive the daemon.

Rotation outcomes are CloudTrail service events; RotateSecret and friends are API-call events; label moves
are `Secret Label Updated` events (AWS-FACTS §1). By default the event goes through EventBridge's default bus,
so the rules route it; `via="queue"` sends the envelope straight to the queue (real AWS refuses `PutEvents`
with an `aws.*` source, so that is the way to inject events there).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from daemon.aws import Aws
from daemon.errors import PermanentAwsError
from daemon.events import API_CALL_EVENTS, LABEL_EVENT, ROTATION_EVENTS, Rejection, parse_message
from daemon.table import utc_iso
from daemon.timer import utc_now

EVENT_NAMES = sorted(ROTATION_EVENTS | API_CALL_EVENTS | {LABEL_EVENT})
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
_DETAIL_TYPES = {
    "service": "AWS Service Event via CloudTrail",
    "api_call": "AWS API Call via CloudTrail",
    "label": "Secret Label Updated",
}


def _kind(event_name: str) -> str:
    if event_name == LABEL_EVENT:
        return "label"
    return "api_call" if event_name in API_CALL_EVENTS else "service"


def build_event(
    event_name: str,
    secret_arn: str,
    *,
    rotation_id: str | None = None,
    event_id: str | None = None,
    step: str | None = None,
    account: str | None = None,
    region: str | None = None,
    when: datetime | None = None,
    version_id: str | None = None,
    label: str = "AWSCURRENT",
) -> dict[str, Any]:
    """The full EventBridge envelope for one event, shaped as AWS sends it."""
    _, _, _, arn_region, arn_account, _ = secret_arn.split(":", 5)
    account = account or arn_account
    region = region or arn_region
    moment = when or utc_now()
    kind = _kind(event_name)
    envelope: dict[str, Any] = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _DETAIL_TYPES[kind],
        "source": "aws.secretsmanager",
        "account": account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
    }
    if kind == "label":
        envelope["resources"] = [secret_arn]
        envelope["detail"] = {"versionId": version_id or str(uuid.uuid4()), "labelUpdated": label}
        return envelope
    rotation_id = rotation_id or str(uuid.uuid4())
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"Rotation-{secret_arn}-{rotation_id}",
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if kind == "service":
        detail["additionalEventData"] = {"SecretId": secret_arn}
        if event_name.endswith("RotationFailed"):
            detail["errorMessage"] = (
                f"Error when executing lambda arn:aws:lambda:{region}:{account}:function:rotaudit-demo-rotation "
                f"during {step or 'setSecret'} step"
            )
    else:
        detail["eventType"] = "AwsApiCall"
        detail["requestID"] = rotation_id
        detail["requestParameters"] = {"secretId": secret_arn}
        detail["responseElements"] = {"arn": secret_arn}
    envelope["detail"] = detail
    return envelope


async def resolve_secret_arn(aws: Aws, secret: str) -> str:
    """The secret's ARN; for a secret that does not exist, a stable made-up ARN in this account."""
    if secret.startswith("arn:"):
        return secret
    try:
        described = await aws.call("secretsmanager", "describe_secret", SecretId=secret)
        return str(described["ARN"])
    except PermanentAwsError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
    account = str((await aws.call("sts", "get_caller_identity"))["Account"])
    suffix = hashlib.sha256(secret.encode()).hexdigest()[:6]
    return f"arn:aws:secretsmanager:{aws.region}:{account}:secret:{secret}-{suffix}"


async def publish(aws: Aws, envelope: dict[str, Any], *, via: str, queue_url: str = "") -> None:
    """Deliver the event the way AWS would (EventBridge) or straight to the queue."""
    if via == "queue":
        await aws.call("sqs", "send_message", QueueUrl=queue_url, MessageBody=json.dumps(envelope))
        return
    entry = {
        "Source": envelope["source"],
        "DetailType": envelope["detail-type"],
        "Detail": json.dumps(envelope["detail"]),
        "Resources": envelope["resources"],
        "Time": datetime.strptime(envelope["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
    }
    result = await aws.call("events", "put_events", Entries=[entry])
    if result.get("FailedEntryCount"):
        failure = result["Entries"][0]
        raise PermanentAwsError("events", "put_events", str(failure.get("ErrorCode")), str(failure.get("ErrorMessage")))


def summary(envelope: dict[str, Any]) -> dict[str, str]:
    """What `emit` prints: the ids a test or a person uses to find the event again, as the daemon reads them."""
    parsed = parse_message(json.dumps(envelope))
    if isinstance(parsed, Rejection):
        raise ValueError(f"built an event the parser rejects: {parsed.reason}: {parsed.detail}")
    return {
        "event_name": parsed.event_name,
        "secret_arn": parsed.secret_arn,
        "rotation_id": parsed.rotation_id,
        "event_id": parsed.event_id,
        "event_time": utc_iso(parsed.event_time),
    }
