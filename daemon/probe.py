"""The doctor's probe event: what `rotaudit doctor --probe` sends through EventBridge, and how the daemon records it.

AWS refuses `PutEvents` with a source starting `aws.` (AWS-FACTS §7: moto accepts it, AWS does not), so no one can
send a synthetic Secrets Manager event through the rotation rules. The probe therefore has its own source and
detail-type and its own rule (`<prefix>-doctor-probe`, provisioned beside the rotation rules, with the same target
shape: the queue, undeliverables to the DLQ, admitted by the queue policy). It exercises the default bus, a rule's
delivery to the queue under the queue's policy, and the daemon's consumption.

The daemon recognises a probe before parsing rotation events: it is never a rotation (no secret, no `secret#`
partition: `history` and `report` never show it), never rejected to the DLQ, and never reaches a feature's hook. It
is recorded as one item in a partition of its own, `probe#<probe id>`, kind `probe`, expiring after a day (TTL); a
redelivery finds it there. Doctor waits for that item: it proves the event arrived and a running daemon consumed it.
Anyone allowed `events:PutEvents` on the bus can send a probe; all it can do is write such an item.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from daemon.audit import put_if_absent
from daemon.aws import Aws
from daemon.table import TTL_ATTRIBUTE, utc_iso

PROBE_SOURCE = "rotaudit.doctor"
PROBE_DETAIL_TYPE = "rotaudit doctor probe"
PROBE_RETENTION = timedelta(days=1)
_PROBE_ID_RE = re.compile(r"[0-9a-f]{32}")


def probe_rule_name(prefix: str) -> str:
    return f"{prefix}-doctor-probe"


def probe_pattern() -> dict[str, Any]:
    """The probe rule's event pattern: only doctor's probes."""
    return {"source": [PROBE_SOURCE], "detail-type": [PROBE_DETAIL_TYPE]}


def probe_entry(probe_id: str, sent_at: datetime) -> dict[str, Any]:
    """The `PutEvents` entry doctor sends (default bus)."""
    return {
        "Source": PROBE_SOURCE,
        "DetailType": PROBE_DETAIL_TYPE,
        "Detail": json.dumps({"probe_id": probe_id, "sent_at": utc_iso(sent_at)}),
    }


def parse_probe(body: str) -> str | None:
    """The probe id when the message body is a doctor probe as EventBridge delivers it; None for anything else."""
    if PROBE_SOURCE not in body:  # cheap: most messages are not probes
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("source") != PROBE_SOURCE:
        return None
    detail = event.get("detail")
    probe_id = detail.get("probe_id") if isinstance(detail, dict) else None
    if event.get("detail-type") != PROBE_DETAIL_TYPE or not isinstance(probe_id, str):
        return None
    return probe_id if _PROBE_ID_RE.fullmatch(probe_id) else None


def probe_key(probe_id: str) -> dict[str, str]:
    return {"pk": f"probe#{probe_id}", "sk": "probe"}


async def record_probe(aws: Aws, table: str, probe_id: str, *, message_id: str, now: datetime) -> None:
    """Record the probe's arrival once (a redelivery finds it recorded)."""
    item = probe_key(probe_id) | {
        "kind": "probe",
        "probe_id": probe_id,
        "received_at": utc_iso(now),
        "message_id": message_id,
        TTL_ATTRIBUTE: int((now + PROBE_RETENTION).timestamp()),
    }
    await put_if_absent(aws, table, item)
