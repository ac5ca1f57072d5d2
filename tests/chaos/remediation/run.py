"""The remediation profile's run: real rotation failures on the stand-in, remediated by replicas under chaos.

1. start the emulator and the fault proxy; provision a stack; subscribe a queue to the SNS topic; create one secret
   per scenario with its stand-in function and faults (`scenarios`); add rules delivering half the secrets' events
   twice;
2. start the replicas (settle, retry base and poll short: `profiles.remediation_env`), faults on;
3. rotate every secret once (RotateSecret, as its schedule would), evenly over `send_s`, while the timeline
   SIGKILLs and restarts replicas (and, in the full run, stalls the emulator and restarts them all);
4. wait (bounded) until nothing moves: no rotation running, the queue empty, no remediation due or open;
5. stop the replicas with SIGTERM, read every secret's state from the stand-in, check the invariants.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

from tests.chaos import checks
from tests.chaos.harness import Run
from tests.chaos.processes import ChaosError, Replica, http_json, start_emulator, start_proxy
from tests.chaos.profiles import RemediationProfile, remediation_env
from tests.chaos.remediation import invariants, scenarios
from tests.chaos.remediation.scenarios import ChaosSecret
from tests.chaos.workload import ACCOUNT, REGION
from tests.support import rotation
from tests.support.rotation import RotationState

STUCK_LOOKS = 10  # 2 s apart: longer than a claim lease's margin, so no live holder is mid-pass


class Rotator(threading.Thread):
    """RotateSecret on every secret once, evenly over `duration_s`, straight to the emulator (as a schedule would)."""

    def __init__(self, sm: Any, secrets: list[ChaosSecret], duration_s: float, rng: random.Random) -> None:
        super().__init__(name="chaos-rotator", daemon=True)
        self.sm, self.duration_s = sm, duration_s
        self.order = rng.sample(secrets, len(secrets))
        self.tokens: dict[str, str] = {}  # secret ARN -> the token of the rotation started here
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for index, secret in enumerate(self.order):
                due = started + self.duration_s * index / len(self.order)
                time.sleep(max(0.0, due - time.monotonic()))  # pacing, not synchronisation
                self.tokens[secret.arn] = str(self.sm.rotate_secret(SecretId=secret.arn)["VersionId"])
        except BaseException as exc:  # reported by the run, which owns the deadline
            self.error = exc


class RemediationRun(Run):
    """One run of the remediation profile; `execute()` returns the figures and the failures."""

    profile: RemediationProfile

    def __init__(self, profile: RemediationProfile, out: Any, seed: int) -> None:
        super().__init__(profile, out, seed)
        self._looks: list[tuple[bool, frozenset[str]]] = []  # (nothing moving, remediations open), newest last

    def _execute(self) -> None:
        profile = self.profile
        with self._phase("setup"):
            self.emulator, emulator_url = start_emulator(self.log_dir)
            self.processes.append(self.emulator)
            proxy, proxy_url = start_proxy(emulator_url, profile.fault_rate, self.seed, self.log_dir)
            self.processes.append(proxy)
            http_json(proxy_url + "/_chaos/config", {"rate": 0.0})  # set-up is not under test
            stack = self._provision(emulator_url)
            sqs, ddb = self.client("sqs", emulator_url), self.client("dynamodb", emulator_url)
            notes_url = self._subscribe(emulator_url, stack["topic_arn"])
            sm = self.client("secretsmanager", emulator_url)
            prefix = f"chaosr/{uuid.uuid4().hex[:6]}"
            secrets = scenarios.create(sm, emulator_url, prefix, scenarios.scenarios(profile.copies))
            queue_arn = sqs.get_queue_attributes(QueueUrl=stack["queue_url"], AttributeNames=["QueueArn"])
            arn_prefix = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
            events = self.client("events", emulator_url)
            scenarios.duplicate_rules(events, queue_arn["Attributes"]["QueueArn"], prefix, arn_prefix)

        with self._phase("replicas_ready"):
            http_json(proxy_url + "/_chaos/config", {"rate": profile.fault_rate})
            env = remediation_env(proxy_url, stack, profile)
            self.replicas = [Replica(index, env, self.log_dir) for index in range(profile.replicas)]
            for replica in self.replicas:
                replica.start()
            for replica in self.replicas:
                replica.wait_ready()

        with self._phase("rotate_and_chaos"):
            rotator = Rotator(sm, secrets, profile.send_s, self.rng)
            rotator.start()
            self._chaos(time.monotonic())
            self._wait("the rotations to start", lambda: not rotator.is_alive(), profile.send_s + 120)
            if rotator.error is not None:
                raise ChaosError(f"rotating failed: {rotator.error!r}")

        with self._phase("settle"):
            self._wait(
                "remediation to settle",
                lambda: self._quiet(emulator_url, sqs, ddb, stack),
                profile.settle_timeout_s,
                2.0,
            )

        with self._phase("stop"):
            self._watch()
            for replica in self.replicas:
                replica.signal_stop()
            for replica in self.replicas:
                replica.reap(replica.current, "final sigterm")
        with self._phase("check"):
            self.figures["emulator_cpu_s"] = round(self.emulator.cpu_s(), 1)
            faults = http_json(proxy_url + "/_chaos/stats")
            self._check_end(emulator_url, ddb, sqs, stack, notes_url, secrets, rotator.tokens, faults)

    def _quiet(self, endpoint: str, sqs: Any, ddb: Any, stack: dict[str, str]) -> bool:
        """Nothing moves, twice in a row: no rotation running, the queue empty, nothing due, no claim open.

        Claims left open with no wake-up cannot move any more (every save writes its claim and its wake-up in one
        transaction): once the same ones have stood so for `STUCK_LOOKS` looks, the wait ends and the checks
        report them."""
        idle = bool(http_json(f"{endpoint}/_rotaudit/rotation/idle")["idle"])
        counts = checks.queue_counts(sqs, stack["queue_url"])
        items = checks.table_items(ddb, stack["table_name"])
        due = sum(1 for item in items if item["pk"] == "remediation-due")
        open_ = frozenset(
            str(item["rotation_id"])
            for item in items
            if item.get("kind") == "remediation" and item.get("status") in invariants.OPEN_STAGES
        )
        still = idle and not any(counts.values()) and due == 0
        self._looks.append((still, open_))
        self._last_seen = f"stand-in idle {idle}, queue {counts}, {due} wake-ups, {len(open_)} remediations open"
        recent = self._looks[-STUCK_LOOKS:]
        if len(recent) == STUCK_LOOKS and all(look == (True, open_) for look in recent) and open_:
            self.figures["stuck_remediations"] = sorted(open_)
            return True
        return len(self._looks) >= 2 and self._looks[-2] == self._looks[-1] == (True, frozenset())

    def _check_end(
        self,
        endpoint: str,
        ddb: Any,
        sqs: Any,
        stack: dict[str, str],
        notes_url: str,
        secrets: list[ChaosSecret],
        tokens: dict[str, str],
        faults: dict[str, Any],
    ) -> None:
        states = {secret.arn: rotation.state(endpoint, secret.arn) for secret in secrets}
        items = checks.table_items(ddb, stack["table_name"])
        history = [item for item in items if item.get("kind") == "remediation"]
        notes = checks.drain_notifications(sqs, notes_url)
        records = list(checks.log_records(self.log_dir))
        publish_lost = int(faults["by_operation"].get("error_after sns.Publish", 0))
        cancelled = sum(int(r.get("batches", 0)) for _, r in records if r.get("event") == "consumer.drain_timed_out")
        interrupted = len(self._all_killed()) + cancelled + len(self.unexpected_exits)
        failed = invariants.failed_rotations(states)
        dlq = checks.queue_counts(sqs, stack["dlq_url"])
        if any(dlq.values()):
            self.failures.append(f"the DLQ holds messages, and none was expected: {dlq}")
        processed = Counter(str(r.get("outcome")) for _, r in records if r.get("event") == "event.processed")
        self.figures.update(
            {
                "secrets": len(secrets),
                "duplicated_secrets": sum(1 for s in secrets if s.duplicated),
                **_rotation_figures(states, tokens),
                "remediation_items": len(history),
                "remediation_status": dict(Counter(str(item.get("status")) for item in history)),
                "remediation_reasons": dict(Counter(str(item.get("reason")) for item in history)),
                "notifications": len(notes),
                "notifications_by_kind": dict(Counter(str(note.get("kind")) for note in notes)),
                "deliveries_processed": dict(processed),
                **invariants.check_current_works(secrets, states, history, self.failures),
                **invariants.check_no_unlabelled_version(secrets, states, self.failures),
                **invariants.check_no_refusal(secrets, states, self.failures),
                **invariants.check_once(failed, history, notes, publish_lost + interrupted, self.failures),
                "outcomes_by_scenario": _outcomes(secrets, states, history),
                **checks.check_exits({f"replica-{r.index}": r.exit_codes for r in self.replicas}, self.failures),
                "dlq_messages": sum(dlq.values()),
                "faults_injected": faults["injected"],
                "faults_total": sum(faults["injected"].values()),
                "faults_by_operation": faults["by_operation"],
                **checks.log_summary(records),
            }
        )
        self.figures["invariants"] = {
            "a_current_works_or_escalated": self.figures["a_current_rejected_unescalated"] == 0,
            "b_no_unlabelled_accepted_version": self.figures["b_unlabelled_accepted_versions"] == 0,
            "c_no_rotate_secret_refused": self.figures["c_rotate_secret_refusals"] == 0,
            "d_one_item_per_failed_rotation": self.figures["d_rotations_without_item"]
            == self.figures["d_rotations_with_several_items"]
            == self.figures["d_stray_items"]
            == 0,
            "d_notifications_once": self.figures["d_repeated_notifications"] <= publish_lost + interrupted,
            "every_remediation_finished": self.figures["remediations_left_open"] == 0,
        }


def _rotation_figures(states: dict[str, RotationState], tokens: dict[str, str]) -> dict[str, Any]:
    rotations = [(arn, r) for arn, state in states.items() for r in state.rotations if not r.test]
    attempts = [a for _, r in rotations for a in r.attempts]
    first = [r for arn, r in rotations if tokens.get(arn) == r.token]
    failed_first = [r for r in first if any(a.outcome == "failed" for a in r.attempts)]
    return {
        "rotations_started": len(first),
        "rotations_by_rotaudit": len(rotations) - len(first),
        "rotations_by_status": dict(Counter(r.status for _, r in rotations)),
        "failures_injected": sum(1 for a in attempts if a.outcome == "failed" and a.reason == "injected"),
        "failed_attempts": sum(1 for a in attempts if a.outcome == "failed"),
        "failed_attempts_by_reason": dict(Counter(str(a.reason) for a in attempts if a.outcome == "failed")),
        "failed_rotations": sum(1 for _, r in rotations if any(a.outcome == "failed" for a in r.attempts)),
        "recovered_by_secrets_managers_retries": sum(1 for r in failed_first if r.status == "succeeded"),
        "not_recovered_by_secrets_managers_retries": sum(1 for r in failed_first if r.status == "failed"),
    }


def _outcomes(
    secrets: list[ChaosSecret], states: dict[str, RotationState], history: list[dict[str, Any]]
) -> dict[str, str]:
    """Scenario -> the first failure's status (and reason), then the latest's, and whether AWSCURRENT works now."""
    items = invariants.by_secret(history)
    shown = {}
    for secret in secrets:
        found = items[secret.arn]
        first, last = (found[0], found[-1]) if found else ({}, {})
        chain = f"{first.get('status')}/{first.get('reason')}"
        if len(found) > 1:
            chain += f" … {last.get('status')}/{last.get('reason')} ({len(found)} failures)"
        shown[secret.name.rsplit("/", 1)[-1] + " " + secret.scenario.name] = (
            f"{chain}; current works: {states[secret.arn].current_works}"
        )
    return shown
