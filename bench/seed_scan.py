"""The age scan's baseline: the seed tutorial's scheduled Lambda (`src/rotation_check.py`), kept as it was written.

One paginated `ListSecrets` with the tag-key filter, the handler's own re-check of `Managed == "true"`, an age
verdict from `LastRotatedDate or LastChangedDate`, and one `Table.put_item` per secret through boto3's resource
layer, in sequence. Configured, as the Lambda is, by environment variables read at import (TABLE_NAME,
MAX_AGE_DAYS) and boto3's own (AWS_ENDPOINT_URL, AWS_REGION). Its known mistakes stay, since none of them
crashes: it trusts `LastChangedDate`, which tag edits move, and it never looks at a stuck AWSPENDING or an
overdue `NextRotationDate`; so it flags fewer secrets than it should.

Changes, marked BENCH: the tutorial's page omits its imports (added), and the table (created by the benchmark with
the tutorial's key schema, `secret_name` + `run_id`) is named by TABLE_NAME as in the tutorial. Nothing else.
"""

# src/rotation_check.py: the scheduled Lambda.
# On every fire, list Managed=true secrets and write an audit row for each.

import datetime as dt  # BENCH: the tutorial's listing shows no imports
import os
import time
from typing import Any

import boto3

TABLE_NAME = os.environ["TABLE_NAME"]
MAX_AGE_DAYS = int(os.environ.get("MAX_AGE_DAYS", "30"))

_sm = boto3.client("secretsmanager")
_tbl = boto3.resource("dynamodb").Table(TABLE_NAME)


def handle(event: Any, _ctx: Any) -> dict[str, Any]:  # BENCH: type hints only
    now = dt.datetime.now(dt.UTC)  # BENCH: ruff spells the tutorial's dt.timezone.utc so (same object)
    cutoff = now - dt.timedelta(days=MAX_AGE_DAYS)
    run_id = f"run-{int(time.time() * 1000)}"

    checked = flagged = 0
    # ListSecrets pre-filters by tag-key. We re-check Managed=="true" below
    # because the API filter is a key-presence test, not a value match.
    for page in _sm.get_paginator("list_secrets").paginate(Filters=[{"Key": "tag-key", "Values": ["Managed"]}]):
        for secret in page.get("SecretList", []):
            tags = {t["Key"]: t["Value"] for t in secret.get("Tags", [])}
            if tags.get("Managed") != "true":
                continue
            checked += 1

            # LastRotatedDate is set only by AWS-driven rotations; fall back to
            # LastChangedDate when a human has not configured rotation yet.
            last = secret.get("LastRotatedDate") or secret.get("LastChangedDate")
            status = "needs_rotation" if (last is None or last < cutoff) else "ok"
            flagged += status == "needs_rotation"

            _tbl.put_item(
                Item={
                    "secret_name": secret["Name"],
                    "run_id": run_id,
                    "status": status,
                    "checked_at": now.isoformat(),
                }
            )
    return {"run_id": run_id, "checked": checked, "flagged": flagged}
