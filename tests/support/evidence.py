"""A hand-built audit history for `rotaudit evidence`, written into a fresh table with the production item builders.

Period 2026-07-01 (Wednesday) to 2026-07-15, one scan run a day at 00:00, age limit 30 days:
- alpha: rotated 06-20; rotates again 07-05 12:00. Always compliant.
- bravo: rotated 05-27 (35 days old on 07-01: out of compliance); rotation r-b1 fails at 07-03 10:05 (setSecret,
  repeated by Secrets Manager's retry at 10:20), remediation `recovered`; r-b2 succeeds 07-03 16:05: 6 h to recover.
- charlie: rotated 06-10; rotation r-c1 fails 07-10 02:00 (testSecret), remediation `needs_human`, never recovered;
  over 30 days from 07-11.
Outside the period, in the weeks it touches (read, then cut): alpha's rotation on 06-30, every secret's 06-30 and
07-15 runs. bravo also has hourly scan rows, which the `by_period` index does not hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from daemon.audit import event_item
from daemon.events import RotationEvent
from daemon.remediation.claim_items import history_item
from daemon.scan.rollup import rollup_update
from daemon.table import secret_pk, table_definition, to_dynamo, utc_iso
from tests.support.scan import client

SINCE, UNTIL = "2026-07-01", "2026-07-15"
MAX_AGE_DAYS = 30
ACCOUNT = "123456789012"


def arn(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


# secret → rotations: (started, outcome time, outcome, rotation id, failed step)
ROTATIONS: dict[str, list[tuple[str, str, str, str, str | None]]] = {
    "alpha": [
        ("06-30T09:00", "06-30T09:05", "RotationSucceeded", "r-a0", None),
        ("07-05T11:55", "07-05T12:00", "RotationSucceeded", "r-a1", None),
    ],
    "bravo": [
        ("07-03T10:00", "07-03T10:05", "RotationFailed", "r-b1", "setSecret"),
        ("07-03T10:15", "07-03T10:20", "RotationFailed", "r-b1", "setSecret"),  # Secrets Manager's retry
        ("07-03T16:00", "07-03T16:05", "RotationSucceeded", "r-b2", None),
    ],
    "charlie": [("07-10T01:55", "07-10T02:00", "RotationFailed", "r-c1", "testSecret")],
}
REMEDIATIONS = {"bravo": ("r-b1", "07-03T10:05", "recovered"), "charlie": ("r-c1", "07-10T02:00", "needs_human")}
LAST_ROTATED_BEFORE = {"alpha": "06-20T00:00", "bravo": "05-27T00:00", "charlie": "06-10T00:00"}
RUN_DAYS = [at("06-30T00:00") + timedelta(days=d) for d in range(16)]  # 06-30 .. 07-15: the first and last are cut


def _event(name: str, event_name: str, when: str, rotation: str, step: str | None, n: int) -> dict[str, Any]:
    event = RotationEvent(
        event_name, "service", arn(name), name, rotation, f"ev-{name}-{n}", at(when), ACCOUNT, "us-east-1", None,
        step, "boom" if step else None,
    )  # fmt: skip
    return event_item(event, at(when))


def _age_days(name: str, moment: datetime) -> float:
    rotated = [at(LAST_ROTATED_BEFORE[name])] + [
        at(done) for _, done, outcome, _, _ in ROTATIONS[name] if outcome == "RotationSucceeded" and at(done) <= moment
    ]
    return (moment - max(rotated)).total_seconds() / 86400


def write_history(endpoint: str, table: str) -> None:
    """Create `table` as provisioned and write the history above into it."""
    ddb = client("dynamodb", endpoint)
    ddb.create_table(**table_definition(table))
    n = 0
    for name, rotations in ROTATIONS.items():
        for started, done, outcome, rotation, step in rotations:
            for item in (
                _event(name, "RotationStarted", started, rotation, None, n),
                _event(name, outcome, done, rotation, step, n + 1),
            ):
                ddb.put_item(TableName=table, Item=to_dynamo(item))
            n += 2
    for name, (rotation, failed_at, stage) in REMEDIATIONS.items():
        claim = {
            "secret_arn": arn(name),
            "name": name,
            "rotation_id": rotation,
            "failed_at": utc_iso(at(failed_at)),
            "history_sk": f"{utc_iso(at(failed_at))}#remediation#{rotation}",
            "stage": stage,
        }
        ddb.put_item(TableName=table, Item=to_dynamo(history_item(claim)))
    for name in ROTATIONS:
        for run_at in RUN_DAYS:
            age = _age_days(name, run_at)
            row = {
                "secret_arn": arn(name),
                "secret_name": name,
                "run_id": run_at.strftime("%Y%m%dT%H%M%SZ"),
                "status": "ok" if age <= MAX_AGE_DAYS else "needs_rotation",
                "age_days": Decimal(f"{age:.2f}"),
            }
            ddb.update_item(**rollup_update(table, row, run_at_iso=utc_iso(run_at), max_age_days=MAX_AGE_DAYS))
    for hour in range(48):  # bravo's hourly scan rows: in its partition, not in the evidence index
        run_at = at("07-02T00:00") + timedelta(hours=hour)
        sk = f"{utc_iso(run_at)}#scan#{run_at:%Y%m%dT%H%M%SZ}"
        row = {"pk": secret_pk(arn("bravo")), "sk": sk, "kind": "scan", "secret_name": "bravo", "status": "ok"}
        ddb.put_item(TableName=table, Item=to_dynamo(row))


# What the report must say, worked out by hand from the history above.
EXPECTED_SECRETS: dict[str, dict[str, Any]] = {
    "alpha": {
        "ever_out_of_compliance": False,
        "rotations_started": 1,
        "rotations_succeeded": 1,
        "rotations_failed": 0,
        "failures_recovered": 0,
        "failures_unrecovered": 0,
        "recovery_seconds": [],
        "remediations": 0,
        "remediation_outcomes": {},
        "max_over_age_days": 0.0,
        "scan_runs": 14,
        "compliant_runs": 14,
        "compliant_share": 1.0,
        "age_days_at_end": 8.5,  # 07-14 00:00, rotated 07-05 12:00
    },
    "bravo": {
        "ever_out_of_compliance": True,
        "rotations_started": 2,
        "rotations_succeeded": 1,
        "rotations_failed": 1,
        "failures_recovered": 1,
        "failures_unrecovered": 0,
        "recovery_seconds": [21600.0],  # 10:05 → 16:05
        "remediations": 1,
        "remediation_outcomes": {"recovered": 1},
        "max_over_age_days": 7.0,  # 37 days old on 07-03 00:00
        "scan_runs": 14,
        "compliant_runs": 11,  # 07-01, 07-02, 07-03 out
        "compliant_share": 0.7857,
        "age_days_at_end": 10.33,  # 07-14 00:00, rotated 07-03 16:05
    },
    "charlie": {
        "ever_out_of_compliance": True,
        "rotations_started": 1,
        "rotations_succeeded": 0,
        "rotations_failed": 1,
        "failures_recovered": 0,
        "failures_unrecovered": 1,
        "recovery_seconds": [None],
        "remediations": 1,
        "remediation_outcomes": {"needs_human": 1},
        "max_over_age_days": 4.0,  # 34 days old on 07-14
        "scan_runs": 14,
        "compliant_runs": 10,  # 07-11 .. 07-14 out
        "compliant_share": 0.7143,
        "age_days_at_end": 34.0,
    },
}
EXPECTED_FLEET: dict[str, Any] = {
    "secrets": 3,
    "secrets_ever_out_of_compliance": 2,
    "rotations_started": 4,
    "rotations_succeeded": 2,
    "rotations_failed": 2,
    "failures_recovered": 1,
    "failures_unrecovered": 1,
    "recovery_mean_s": 21600.0,
    "recovery_max_s": 21600.0,
    "remediations": 2,
    "remediation_outcomes": {"needs_human": 1, "recovered": 1},
    "max_over_age_days": 7.0,
    "scan_runs": 42,
    "compliant_runs": 35,
    "compliant_share": 0.8333,
    "age_distribution_at_end": {
        "0-7": 0,
        "7-14": 2,
        "14-21": 0,
        "21-30": 0,
        "30-45": 1,
        "45-60": 0,
        "60-90": 0,
        "90+": 0,
    },
    "weekly_compliance": [
        {"week": "2026-06-29", "scan_runs": 15, "compliant_runs": 12, "compliant_share": 0.8},
        {"week": "2026-07-06", "scan_runs": 21, "compliant_runs": 19, "compliant_share": 0.9048},
        {"week": "2026-07-13", "scan_runs": 6, "compliant_runs": 4, "compliant_share": 0.6667},
    ],
}
# Read: 16 rollups per secret (06-30 .. 07-15: the weeks of 06-29, 07-06, 07-13) and 14 event and remediation items
# (alpha 4, bravo 7, charlie 3); used: the 14 in-period rollups per secret and 12 of those items (not alpha's 06-30).
EXPECTED_ITEMS_READ = 3 * 16 + 14
EXPECTED_ITEMS_USED = 3 * 14 + 12


class Figures(HTMLParser):
    """The HTML's `data-figure` values and each `data-secret` row's `data-field` cells."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self._open: tuple[str, str | None] | None = None
        self._row = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-secret" in found:
            self._row = str(found["data-secret"])
            self.rows[self._row] = {}
        if "data-figure" in found:
            self._open = ("figure", found["data-figure"])
        elif "data-field" in found and self._row:
            self._open = ("field", found["data-field"])

    def handle_data(self, data: str) -> None:
        if self._open:
            kind, key = self._open
            (self.figures if kind == "figure" else self.rows[self._row])[str(key)] = data.strip()
            self._open = None
