"""Contender (a): the seed tutorial's audit consumer ("Audit Logging with SQS"), kept as it was written.

Synchronous boto3 on one thread: receive up to 10 with a 20 s long poll, then for each message `json.loads`,
`Table.put_item` through boto3's resource layer, and `delete_message`. Two changes, both needed for it to run
at all: the secret ARN is read where real rotation events carry it, and the item gets the table's key.
Prints "ready" once its clients exist; SIGTERM ends it, after printing "received N" (messages delivered to it).

    python -m bench.baseline_consumer --endpoint-url URL --queue-url URL --table NAME
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from typing import Any

import boto3


def process_audit_events(sqs_client: Any, table: Any, queue_url: str, received: list[int]) -> None:
    """The seed's loop, unchanged but for the marked lines."""
    while True:
        response = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20)

        messages = response.get("Messages", [])
        received[0] += len(messages)  # BENCH: counts deliveries for the harness

        for message in messages:
            body = json.loads(message["Body"])

            # Extract relevant details
            event_name = body["detail"]["eventName"]
            # CHANGED: the seed reads body['detail']['requestParameters']['secretId'], which is null in the
            # service events Secrets Manager emits for rotations (AWS-FACTS.md §1): it would raise TypeError on
            # every real event. The ARN is in detail.additionalEventData.SecretId.
            secret_arn = body["detail"]["additionalEventData"]["SecretId"]
            timestamp = body["detail"]["eventTime"]

            # Write to audit log
            table.put_item(
                Item={
                    # CHANGED: the provisioned table's key (the seed's table is keyed on its own attributes).
                    # One item per distinct event; a duplicate delivery overwrites it, as in the seed.
                    "pk": f"secret#{secret_arn}",
                    "sk": f"{timestamp}#event#{body['detail']['requestID']}#{body['detail']['eventID']}",
                    "secret_arn": secret_arn,
                    "event_type": event_name,
                    "timestamp": timestamp,
                    "full_event": json.dumps(body),
                    "recorded_at": datetime.utcnow().isoformat(),
                }
            )

            # Delete from queue only after successful processing
            sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _exit(*_: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit)  # interrupts the blocking long poll: PEP 475 runs the handler first

    sqs_client = boto3.client("sqs", region_name=args.region, endpoint_url=args.endpoint_url)
    dynamodb = boto3.resource("dynamodb", region_name=args.region, endpoint_url=args.endpoint_url)
    table = dynamodb.Table(args.table)
    print("ready", flush=True)
    received = [0]
    try:
        process_audit_events(sqs_client, table, args.queue_url, received)
    except KeyboardInterrupt:
        return 130
    finally:
        print(f"received {received[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
