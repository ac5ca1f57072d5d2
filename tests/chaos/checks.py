"""What a finished chaos run must show, read straight from the emulator (table, queues) and the replicas' logs.

Each `check_*` returns figures for the report and appends a plain sentence to `failures` for every broken
promise: no event lost, none doubled, one remediation and one notification per failed rotation, one scan run
per schedule window, nothing in the DLQ, every graceful stop exits 0.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.table import from_dynamo
from tests.chaos.workload import Workload

WINDOW = timedelta(minutes=1)  # the replicas' ROTAUDIT_SCAN_SCHEDULE, rate(1 minute)
UNFINISHED_MARGIN = timedelta(seconds=30)  # a window this close to the final stop may still be running then
LEASE_NAP = timedelta(seconds=30)  # how long a replica waiting on a scan window's lease naps between looks


@dataclass
class Figures:
    """Everything measured, for the printed table and the JSON file."""

    values: dict[str, Any]
    failures: list[str]


def table_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        items.extend(from_dynamo(item) for item in page["Items"])
    return items


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    """Visible, in flight and delayed messages (one GetQueueAttributes "All": moto walks the queue per name)."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def drain_notifications(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every notification delivered to the subscribed queue (raw delivery: the body is the message)."""
    found: list[dict[str, Any]] = []
    empty = 0
    while empty < 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        empty = 0 if messages else empty + 1
        found.extend(json.loads(message["Body"]) for message in messages)
    return found


def log_records(log_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(incarnation name, JSON log record) for every line every replica wrote."""
    for path in sorted(log_dir.glob("replica-*.stderr")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    yield path.stem, json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by SIGKILL


def check_events(items: list[dict[str, Any]], workload: Workload, failures: list[str]) -> dict[str, Any]:
    """Every event sent audited once. The emulator's own events (the rotations rotaudit starts on `retry` secrets,
    and the label moves) are audited too: they are counted apart, and only for the secrets rotaudit rotates."""
    events = [item for item in items if item.get("kind") == "event"]
    retried = {f.secret_arn for f in workload.failed.values() if f.kind == "retry"}
    own = {(item["pk"], item["sk"]) for item in events if item["secret_arn"] in retried}
    present = {(item["pk"], item["sk"]) for item in events}
    per_event = Counter((item["secret_arn"], item["rotation_id"], item["event_id"]) for item in events)
    duplicates = sum(count - 1 for count in per_event.values())
    lost = workload.expected_keys - present
    emulator_events = own - workload.expected_keys
    unexpected = present - workload.expected_keys - emulator_events
    if lost:
        failures.append(f"{len(lost)} distinct events have no audit item, e.g. {sorted(lost)[:3]}")
    if duplicates:
        failures.append(f"{duplicates} events have more than one audit item")
    if unexpected:
        failures.append(f"{len(unexpected)} audit items match no event sent, e.g. {sorted(unexpected)[:3]}")
    return {
        "event_items": len(events) - len(emulator_events),
        "emulator_event_items": len(emulator_events),
        "duplicate_items": duplicates,
        "lost_events": len(lost),
        "unexpected_items": len(unexpected),
    }


def check_remediations(items: list[dict[str, Any]], workload: Workload, failures: list[str]) -> dict[str, Any]:
    history = [item for item in items if item.get("kind") == "remediation"]
    by_rotation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in history:
        by_rotation[item["rotation_id"]].append(item)
    claims = [item for item in items if item["pk"].startswith("remediation#") and item["sk"].startswith("claim#")]
    wakes = [item for item in items if item["pk"] == "remediation-due"]
    missing, doubled, wrong = [], [], []
    for rotation_id, failed in workload.failed.items():
        found = by_rotation.get(rotation_id, [])
        if not found:
            missing.append(rotation_id)
        elif len(found) > 1:
            doubled.append(rotation_id)
        elif found[0].get("status") != failed.expected_status:
            wrong.append(f"{rotation_id} ({failed.kind}): {found[0].get('status')}, not {failed.expected_status}")
    stray = sorted(set(by_rotation) - set(workload.failed))
    if missing:
        failures.append(f"{len(missing)} failed rotations have no remediation item, e.g. {missing[:3]}")
    if doubled:
        failures.append(f"{len(doubled)} failed rotations have more than one remediation item, e.g. {doubled[:3]}")
    if wrong:
        failures.append(f"{len(wrong)} remediations ended in an unexpected status, e.g. {wrong[:3]}")
    if stray:
        failures.append(f"{len(stray)} remediation items for rotations that did not fail, e.g. {stray[:3]}")
    if wakes:
        failures.append(f"{len(wakes)} remediation wake-ups still pending at the end")
    return {
        "failed_rotations": len(workload.failed),
        "failed_rotations_by_kind": dict(Counter(f.kind for f in workload.failed.values())),
        "remediation_items": len(history),
        "remediation_status": dict(Counter(str(item.get("status")) for item in history)),
        "claims_taken_over": sum(1 for claim in claims if int(claim.get("fence", 1)) > 1),
        "pending_wakeups": len(wakes),
    }


def check_notifications(
    notes: list[dict[str, Any]], workload: Workload, publish_after_faults: int, interrupted: int, failures: list[str]
) -> dict[str, Any]:
    """One notification per failed rotation and kind, of the expected kinds (a `recovered` notice is about the
    rotations it names in `recovered_rotations`: its own `rotation_id` is the rotation that succeeded).

    A repeat is allowed only where at-least-once delivery explains it: SNS Publish is not idempotent, so a publish
    whose response was lost (an injected error after forwarding) and then retried arrives twice; and a holder
    stopped between publishing and marking the notification sent (a SIGKILL, or a drain that ran out of time)
    leaves the next holder to publish again. `interrupted` counts those stops.
    """
    raw = Counter((str(note.get("kind")), str(note.get("rotation_id"))) for note in notes)
    kinds_by_rotation: dict[str, set[str]] = defaultdict(set)
    for note in notes:
        about = note.get("recovered_rotations", []) if note.get("kind") == "recovered" else [note.get("rotation_id")]
        for rotation_id in about:
            kinds_by_rotation[str(rotation_id)].add(str(note.get("kind")))
    lost = [r for r in workload.failed if r not in kinds_by_rotation]
    wrong = [
        f"{r}: {sorted(kinds_by_rotation[r])}, not {sorted(f.expected_notifications)}"
        for r, f in workload.failed.items()
        if r in kinds_by_rotation and kinds_by_rotation[r] != f.expected_notifications
    ]
    stray = sorted(set(kinds_by_rotation) - set(workload.failed))
    repeats = sum(count - 1 for count in raw.values())
    if lost:
        failures.append(f"{len(lost)} failed rotations were never notified, e.g. {lost[:3]}")
    if wrong:
        failures.append(f"{len(wrong)} failed rotations were notified with the wrong kind(s), e.g. {wrong[:3]}")
    if stray:
        failures.append(f"{len(stray)} notifications for rotations that did not fail, e.g. {stray[:3]}")
    if repeats > publish_after_faults + interrupted:
        failures.append(
            f"{repeats} repeated notifications, more than the {publish_after_faults} publishes whose response was "
            f"lost and the {interrupted} holders stopped mid-work can explain"
        )
    return {
        "notifications": len(notes),
        "notified_rotations": len(kinds_by_rotation),
        "notifications_by_kind": dict(Counter(str(note.get("kind")) for note in notes)),
        "repeated_notifications": repeats,
        "repeated_rotations": sorted(rotation for (_, rotation), count in raw.items() if count > 1),
        "publishes_with_lost_response": publish_after_faults,
        "holders_interrupted": interrupted,
        "lost_notifications": len(lost),
        "unnotified_rotations": sorted(lost),
    }


def _window_at(run_id: str) -> datetime | None:
    try:
        return datetime.strptime(run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None  # an ad-hoc run id has a suffix


def _windows(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(second=0, microsecond=0)
    found = []
    while first + UNFINISHED_MARGIN <= end:
        found.append(first)
        first += WINDOW
    return found


def check_scans(
    items: list[dict[str, Any]],
    records: Iterable[tuple[str, dict[str, Any]]],
    workload: Workload,
    span: tuple[datetime, datetime],
    killed_pids: set[int],
    failures: list[str],
) -> dict[str, Any]:
    runs = {item["sk"]: item for item in items if item["pk"] == "run#scan"}
    leases = {item["sk"]: item for item in items if item["pk"] == "lease#scan"}
    rows = Counter(str(item["run_id"]) for item in items if item.get("kind") == "scan")
    finished: Counter[str] = Counter()
    started: Counter[str] = Counter()
    lease_lost = 0
    for _, record in records:
        name = record.get("event")
        if name == "scan.run_finished":
            finished[str(record.get("run_id"))] += 1
        elif name == "scan.run_started":
            started[str(record.get("run_id"))] += 1
        elif name == "scan.lease_lost":
            lease_lost += 1
    missed, held_by_killed, waited_out, incomplete = [], [], [], []
    windows = _windows(*span)
    blocked_until = datetime.min.replace(tzinfo=UTC)  # the replicas' timers wait on a dead holder's lease till then
    for window in windows:
        run_id = window.strftime("%Y%m%dT%H%M%SZ")
        run = runs.get(run_id)
        if run is None:
            lease = leases.get(window.strftime("%Y-%m-%dT%H:%M:%S.000Z"), {})
            holder_pid = str(lease.get("holder", "")).split(":")[1:2]
            if lease.get("state") == "running" and holder_pid and int(holder_pid[0]) in killed_pids:
                held_by_killed.append(run_id)  # a replica SIGKILLed mid-run holds it until its lease runs out
                blocked_until = span[1]
            elif window < blocked_until:
                waited_out.append(run_id)  # every timer was busy with an earlier window: skipped, by design
            else:
                missed.append(run_id)
            continue
        # Replicas wait on a running window's lease, napping up to a quarter of the lease (30 s) at a time, and
        # then skip to the latest due window: a window that began before that is skipped by design.
        finished_at = datetime.strptime(str(run["finished_at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        blocked_until = max(blocked_until, finished_at + LEASE_NAP)
        if not (int(run["checked"]) == rows[run_id] == workload.managed_secrets):
            incomplete.append(
                f"{run_id}: checked {run['checked']}, rows {rows[run_id]}, {workload.managed_secrets} managed"
            )
    doubled = sorted(run_id for run_id, count in finished.items() if count > 1 and _window_at(run_id))
    if missed:
        failures.append(f"{len(missed)} scan windows have no run: {missed}")
    if incomplete:
        failures.append(f"{len(incomplete)} scan runs are incomplete: {incomplete[:3]}")
    if doubled:
        failures.append(f"{len(doubled)} scan windows were run to completion by more than one replica: {doubled}")
    return {
        "scan_windows": len(windows),
        "scan_runs": sum(1 for run_id in runs if _window_at(run_id) in windows),
        "scan_windows_missed": len(missed),
        "scan_windows_held_by_killed_replica": len(held_by_killed),
        "scan_windows_skipped_behind_earlier_run": len(waited_out),
        "scan_windows_started_twice": sum(1 for r, count in started.items() if count > 1 and _window_at(r)),
        "scan_lease_lost_logs": lease_lost,
    }


def check_exits(exit_codes: dict[str, list[tuple[str, int | None]]], failures: list[str]) -> dict[str, Any]:
    graceful = [(slot, why, code) for slot, codes in exit_codes.items() for why, code in codes if why != "sigkill"]
    bad = [f"{slot} {why}: exit {code}" for slot, why, code in graceful if code != 0]
    if bad:
        failures.append(f"replicas that did not exit 0 on SIGTERM (or died on their own): {bad}")
    return {
        "sigterm_exits": len(graceful),
        "sigterm_exit_codes": dict(Counter(str(code) for _, _, code in graceful)),
        "sigkill_exits": sum(1 for codes in exit_codes.values() for why, _ in codes if why == "sigkill"),
    }


def log_summary(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A few counts from the replicas' logs that explain the figures (not checked)."""
    wanted = (
        "remediation.claim_lost",
        "remediation.duplicate",
        "remediation.failed",
        "notify.duplicate",
        "event.hook_failed",
        "event.write_failed",
        "consumer.batch_failed",
        "consumer.delete_failed",
        "consumer.receive_failed",
        "consumer.drain_timed_out",
        "timer.windows_skipped",
    )
    counts = Counter(str(record.get("event")) for _, record in records)
    outcomes = Counter(str(record.get("outcome")) for _, record in records if record.get("event") == "event.processed")
    return {"log_counts": {name: counts[name] for name in wanted if counts[name]}, "processed_outcomes": dict(outcomes)}
