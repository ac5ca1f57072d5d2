"""The rules remediation keeps, checked on the secrets' end state (the stand-in's state endpoint) and the books.

(a) no secret is left with AWSCURRENT credentials the fake database rejects, unless the table says a human must act:
    its latest remediation escalated (`needs_human`, with a reason);
(b) no version the database accepts is left without a staging label (`unlabelled_held` empty);
(c) the stand-in refused no RotateSecret (the harness rotates only clean secrets, so every refusal is rotaudit's);
(d) exactly one `kind=remediation` history item per failed rotation, none for another, and at most one notification
    per (rotation, kind) on the SNS-subscribed queue, beyond the repeats lost publish responses and interrupted holders
    explain (SNS is at-least-once).
Each returns figures, and appends a plain sentence to `failures` for every secret or rotation that breaks it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from tests.chaos.remediation.scenarios import ChaosSecret
from tests.support.rotation import RotationState

OPEN_STAGES = frozenset({"settling", "acting", "retry_due"})


def failed_rotations(states: dict[str, RotationState]) -> dict[str, str]:
    """Rotation id -> secret ARN, for every rotation with at least one failed attempt (each emitted RotationFailed)."""
    return {
        r.rotation_id: arn
        for arn, state in states.items()
        for r in state.rotations
        if not r.test and any(a.outcome == "failed" for a in r.attempts)
    }


def by_secret(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Remediation history items per secret ARN, oldest failure first."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (str(i.get("event_time")), str(i.get("updated_at")))):
        found[item["secret_arn"]].append(item)
    return found


def check_current_works(
    secrets: list[ChaosSecret], states: dict[str, RotationState], history: list[dict[str, Any]], failures: list[str]
) -> dict[str, Any]:
    """(a)"""
    items = by_secret(history)
    broken, escalated = [], []
    for secret in secrets:
        if states[secret.arn].current_works is not False:
            continue
        latest = items[secret.arn][-1] if items[secret.arn] else {}
        if latest.get("status") == "needs_human" and latest.get("reason"):
            escalated.append(f"{secret.scenario.name}: {latest['reason']}")
        else:
            broken.append(f"{secret.scenario.name} ({secret.name}): latest remediation {latest.get('status')}")
    if broken:
        failures.append(f"(a) {len(broken)} secrets left with AWSCURRENT rejected and no escalation: {broken[:5]}")
    return {
        "a_current_rejected_unescalated": len(broken),
        "a_current_rejected_escalated": len(escalated),
        "a_escalations_with_current_rejected": dict(Counter(e.split(": ", 1)[1] for e in escalated)),
    }


def check_no_unlabelled_version(
    secrets: list[ChaosSecret], states: dict[str, RotationState], failures: list[str]
) -> dict[str, Any]:
    """(b)"""
    left = [f"{s.scenario.name}: {states[s.arn].unlabelled_held}" for s in secrets if states[s.arn].unlabelled_held]
    if left:
        failures.append(f"(b) {len(left)} secrets hold a version the database accepts with no label: {left[:5]}")
    held = sum(
        1
        for s in secrets
        for stages in states[s.arn].labels.values()
        if any(x.startswith("rotaudit-held-") for x in stages)
    )
    return {"b_unlabelled_accepted_versions": len(left), "held_versions": held}


def check_no_refusal(
    secrets: list[ChaosSecret], states: dict[str, RotationState], failures: list[str]
) -> dict[str, Any]:
    """(c)"""
    refused = {s.scenario.name: states[s.arn].refusals_by_reason for s in secrets if states[s.arn].refusals}
    if refused:
        failures.append(f"(c) RotateSecret refused on {len(refused)} secrets: {dict(list(refused.items())[:5])}")
    return {"c_rotate_secret_refusals": sum(states[s.arn].refusals for s in secrets)}


def check_once(
    failed: dict[str, str],
    history: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    explained_repeats: int,
    failures: list[str],
) -> dict[str, Any]:
    """(d)"""
    per_rotation = Counter(str(item["rotation_id"]) for item in history)
    missing = sorted(set(failed) - set(per_rotation))
    doubled = sorted(r for r in failed if per_rotation[r] > 1)
    stray = sorted(set(per_rotation) - set(failed))
    still_open = sorted(str(item["rotation_id"]) for item in history if item.get("status") in OPEN_STAGES)
    if missing:
        failures.append(f"(d) {len(missing)} failed rotations have no remediation item, e.g. {missing[:3]}")
    if doubled:
        failures.append(f"(d) {len(doubled)} failed rotations have more than one remediation item, e.g. {doubled[:3]}")
    if stray:
        failures.append(f"(d) {len(stray)} remediation items for rotations that never failed, e.g. {stray[:3]}")
    if still_open:
        failures.append(
            f"{len(still_open)} remediations still open at the end (settling, acting or waiting for a retry), "
            f"e.g. {still_open[:3]}"
        )
    sent = Counter((str(note.get("rotation_id")), str(note.get("kind"))) for note in notes)
    repeats = sum(count - 1 for count in sent.values())
    if repeats > explained_repeats:
        failures.append(
            f"(d) {repeats} repeated notifications, more than the {explained_repeats} that lost publish responses "
            f"and interrupted holders explain: {[key for key, count in sent.items() if count > 1][:5]}"
        )
    unknown = sorted(
        {rotation for rotation, kind in sent if kind != "recovered" and rotation not in failed}
        | {r for note in notes for r in note.get("recovered_rotations", []) if r not in failed}
    )
    if unknown:
        failures.append(f"(d) notifications about rotations that never failed, e.g. {unknown[:3]}")
    return {
        "d_failed_rotations": len(failed),
        "d_remediation_items": len(history),
        "d_rotations_without_item": len(missing),
        "d_rotations_with_several_items": len(doubled),
        "d_stray_items": len(stray),
        "remediations_left_open": len(still_open),
        "d_repeated_notifications": repeats,
        "d_repeats_explained_up_to": explained_repeats,
    }
