"""The audit table's schema in one place: keys, indexes, the TTL attribute, the item codec, the table definition.

Schema (single table):
    pk  (S, partition)  "secret#<secret ARN>" — a secret's whole history is one partition
    sk  (S, sort)       "<event time>#event#<rotation id>#<event id>" — chronological, rotation id in the key
    GSI "by_name": secret_name (S) + sk (S), projection ALL — `rotaudit history NAME` without knowing the ARN
    GSI "by_run":  run_id (S) + status_name (S), projection ALL — one scan run's rows by status
    TTL attribute: expires_at (N, epoch seconds), set only when a retention is configured
Features add their own partitions (claims, scan runs and leases, sync records): their key builders live with them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from daemon.events import RotationEvent

BY_NAME_INDEX = "by_name"
BY_RUN_INDEX = "by_run"
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
        ],
        "SSESpecification": {"Enabled": True},
    }
