"""Contender (c): the raw ceiling — the fewest AWS calls the job needs, with no logic, at rotaudit's concurrency.

`--workers` asyncio loops on aiobotocore, each: ReceiveMessage (10, 1 s long poll) → one BatchWriteItem of the
batch's items, deduplicated by key within the batch (unprocessed items retried) → one DeleteMessageBatch.
Parsing is `json.loads` and the dict lookups the key needs; writes are unconditional (a duplicate overwrites
its own item). No validation, no metrics, no logging, no error handling: a failure ends the process.
Prints "ready" once its clients exist; SIGTERM lets each loop finish its batch, prints "received N" (messages
delivered to it), then exits 0.

    python -m bench.ceiling_consumer --endpoint-url URL --queue-url URL --table NAME --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

BATCH = 10


def _put_request(body: str) -> tuple[tuple[str, str], dict[str, Any]]:
    detail = json.loads(body)["detail"]
    pk = f"secret#{detail['additionalEventData']['SecretId']}"
    sk = f"{detail['eventTime']}#event#{detail['requestID']}#{detail['eventID']}"
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "event_name": {"S": detail["eventName"]}}
    return (pk, sk), {"PutRequest": {"Item": item}}


async def _worker(
    sqs: Any, dynamodb: Any, queue_url: str, table: str, wait_s: int, stop: asyncio.Event, received: list[int]
) -> None:
    while not stop.is_set():
        response = await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait_s)
        messages = response.get("Messages", [])
        received[0] += len(messages)  # for the harness: deliveries beyond the queue's size are redeliveries
        if not messages:
            continue
        requests = dict(_put_request(message["Body"]) for message in messages)
        pending: dict[str, Any] = {table: list(requests.values())}
        while pending:
            result = await dynamodb.batch_write_item(RequestItems=pending)
            pending = result.get("UnprocessedItems") or {}
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        await sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = AioConfig(max_pool_connections=max(10, args.workers * 2))
    session = get_session()
    common = {"region_name": args.region, "endpoint_url": args.endpoint_url, "config": config}
    async with (
        session.create_client("sqs", **common) as sqs,
        session.create_client("dynamodb", **common) as dynamodb,
    ):
        print("ready", flush=True)
        received = [0]
        async with asyncio.TaskGroup() as group:
            for _ in range(args.workers):
                group.create_task(_worker(sqs, dynamodb, args.queue_url, args.table, args.wait_time_s, stop, received))
    print(f"received {received[0]}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--wait-time-s", type=int, default=1)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
