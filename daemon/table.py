"""The audit table's schema in one place: keys, indexes, the TTL attribute, the item codec, the table definition.

Schema (single table):
    pk  (S, partition)  "secret#<secret ARN>" — a secret's whole history is one partition
    sk  (S, sort)       "<event time>#event#<rotation id>#<event id>" — chronological, rotation id in the key
    GSI "by_name": secret_name (S) + sk (S), projection ALL — `rotaudit history NAME` without knowing the ARN
    GSI "by_run":  run_id (S) + status_name (S), projection ALL — one scan run's rows by status
    GSI "by_period": period_bucket (S) + pk (S), projection ALL — sparse: events, remediation history items and
                   the scan's daily rollups, by "<Monday of their UTC week>#<shard of the secret>" (`rotaudit
                   evidence`: a period's weeks times EVIDENCE_SHARDS key-condition queries, each sorted by secret;
                   scan rows are not in it, so a quarter reads ~90 rollups per secret, not ~2,160 rows)
    TTL attribute: expires_at (N, epoch seconds), set only when a retention is configured
Features add their own partitions (claims, scan runs and leases, sync records): their key builders live with them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from daemon.events import RotationEvent

BY_NAME_INDEX = "by_name"
BY_RUN_INDEX = "by_run"
BY_PERIOD_INDEX = "by_period"
PERIOD_ATTRIBUTE = "period_bucket"
# A week's items spread over this many index partitions: the hourly scan's rollup writes for 10,000 secrets
# stay far below one partition's write throughput. Changing it re-buckets new items only: never change it.
EVIDENCE_SHARDS = 8
# The scan's daily rollups (written by daemon.scan.rollup, read by daemon.evidence): pk "rollup#<ARN>", sk the UTC
# day, one attribute per run named "run#<run id>" holding "<status>|<age days>|<max age days>" (age empty when
# unknown). A run id starts with its run's UTC time (`20260701T100000Z`).
ROLLUP_PREFIX = "rollup#"
RUN_ATTRIBUTE_PREFIX = "run#"


def run_entry(status: str, age_days: object, max_age_days: int) -> str:
    """A run's value in a rollup: compact, so a day of hourly runs stays near 1 KB (one or two write units)."""
    return f"{status}|{'' if age_days is None else age_days}|{max_age_days}"


def run_time_iso(run_id: str) -> str:
    """The UTC time a run id starts with, as `utc_iso` writes it."""
    moment = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return utc_iso(moment)


TTL_ATTRIBUTE = "expires_at"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# The age scan's index: one run's rows by status (`rotaudit report`).
BY_RUN_ATTRIBUTES = (
    {"AttributeName": "run_id", "AttributeType": "S"},
    {"AttributeName": "status_name", "AttributeType": "S"},
)
BY_RUN_GSI = {
    "IndexName": BY_RUN_INDEX,
    "KeySchema": [
        {"AttributeName": "run_id", "KeyType": "HASH"},
        {"AttributeName": "status_name", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}


# The evidence index (`rotaudit evidence`): what a period's reads find, without a table Scan.
BY_PERIOD_ATTRIBUTES = ({"AttributeName": PERIOD_ATTRIBUTE, "AttributeType": "S"},)
BY_PERIOD_GSI = {
    "IndexName": BY_PERIOD_INDEX,
    "KeySchema": [
        {"AttributeName": PERIOD_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": "pk", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week: the bucket an item of that day lives in."""
    return day - timedelta(days=day.weekday())


def secret_shard(secret_arn: str) -> int:
    """A stable shard of the secret, 0..EVIDENCE_SHARDS-1 (not Python's salted hash: every process agrees)."""
    return int.from_bytes(hashlib.sha256(secret_arn.encode()).digest()[:4], "big") % EVIDENCE_SHARDS


def period_bucket(secret_arn: str, when_iso: str) -> str:
    """The `by_period` partition of a secret's item dated `when_iso` (an ISO-8601 UTC time or date)."""
    return f"{week_start(date.fromisoformat(when_iso[:10])).isoformat()}#{secret_shard(secret_arn)}"


def utc_iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z: sorts lexically in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def secret_pk(secret_arn: str) -> str:
    return f"secret#{secret_arn}"


def event_key(event: RotationEvent) -> dict[str, str]:
    """The item key: one item per distinct event, whatever the number of deliveries."""
    return {
        "pk": secret_pk(event.secret_arn),
        "sk": f"{utc_iso(event.event_time)}#event#{event.rotation_id}#{event.event_id}",
    }


def to_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def table_definition(name: str) -> dict[str, Any]:
    """The audit table's CreateTable parameters (also the reference for the README's schema section)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "secret_name", "AttributeType": "S"},
            *BY_RUN_ATTRIBUTES,
            *BY_PERIOD_ATTRIBUTES,
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": BY_NAME_INDEX,
                "KeySchema": [
                    {"AttributeName": "secret_name", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            BY_RUN_GSI,
            BY_PERIOD_GSI,
        ],
        "SSESpecification": {"Enabled": True},
    }
