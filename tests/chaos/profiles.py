"""How big and how rough a chaos run is (`FULL`, `SHORT`; `REMEDIATION_FULL`, `REMEDIATION_SHORT`), and the settings
every replica runs with."""

from __future__ import annotations

from dataclasses import dataclass

from tests.chaos.processes import clean_env


@dataclass(frozen=True)
class Profile:
    """How big and how rough a run is."""

    messages: int
    replicas: int
    send_s: float  # the messages go out evenly over this long; the timeline's fractions are of it
    timeline: tuple[tuple[float, str], ...]  # (fraction of send_s, "kill" | "stall" | "rolling")
    stall_s: float
    failure_kinds: tuple[str, ...]
    fault_rate: float = 0.05
    drain_timeout_s: float = 600.0
    settle_timeout_s: float = 240.0


FULL = Profile(
    messages=10_000,
    replicas=3,
    send_s=150.0,
    timeline=(
        (0.1, "kill"),
        (0.2, "kill"),
        (0.3, "stall"),
        (0.45, "kill"),
        (0.55, "kill"),
        (0.65, "rolling"),
        (0.95, "kill"),
    ),
    stall_s=15.0,
    failure_kinds=("disabled", "notify_only", "retry"),
)
# Lean enough for `make test`: no `retry` failures, whose RotateSecret falls due 30-60 s after the failure.
SHORT = Profile(
    messages=1_000,
    replicas=3,
    send_s=12.0,
    timeline=((0.1, "kill"), (0.3, "stall"), (0.55, "kill"), (0.7, "rolling")),
    stall_s=5.0,
    failure_kinds=("disabled", "notify_only"),
    drain_timeout_s=120.0,
    settle_timeout_s=90.0,
)


def replica_env(proxy_url: str, stack: dict[str, str]) -> dict[str, str]:
    """A replica's settings: through the proxy, short visibility and claim leases so SIGKILLs heal in seconds."""
    return clean_env(
        AWS_ENDPOINT_URL=proxy_url,
        ROTAUDIT_QUEUE_URL=stack["queue_url"],
        ROTAUDIT_AUDIT_TABLE=stack["table_name"],
        ROTAUDIT_SNS_TOPIC_ARN=stack["topic_arn"],
        ROTAUDIT_REMEDIATION_MODE="apply",
        ROTAUDIT_SCAN_SCHEDULE="rate(1 minute)",
        ROTAUDIT_VISIBILITY_TIMEOUT_S="20",
        ROTAUDIT_WAIT_TIME_S="20",
        ROTAUDIT_DRAIN_TIMEOUT_S="8",
        # Two pollers and 50 messages in flight per replica: the emulator serialises table and queue operations,
        # so more only lengthens its queues (and the time each call waits in them) on a 2-core machine.
        ROTAUDIT_CONSUMER_CONCURRENCY="2",
        ROTAUDIT_MAX_IN_FLIGHT="50",
        ROTAUDIT_CLAIM_LEASE_S="20",
        # Decide a failure 2 s after its last record (the workload's records of one rotation are 1 s apart), look
        # for due work every 2 s, and retry RotateSecret 5-10 s later.
        ROTAUDIT_REMEDIATION_SETTLE_S="2",
        ROTAUDIT_REMEDIATION_POLL_S="2",
        ROTAUDIT_REMEDIATION_RETRY_BASE_S="10",
        ROTAUDIT_DLQ_POLL_S="30",
        ROTAUDIT_LOG_FORMAT="json",
        ROTAUDIT_LOG_LEVEL="info",
    )


@dataclass(frozen=True)
class RemediationProfile(Profile):
    """The remediation profile: `copies` of every scenario (0: each once, half recovering), rotations started evenly
    over `send_s`, the timeline's fractions of it (above 1: while remediation runs on)."""

    copies: int = 0
    settle_s: int = 3  # ROTAUDIT_REMEDIATION_SETTLE_S: longer than the stand-in's retries of one rotation (~1.5 s)
    retry_base_s: float = 2.0  # ROTAUDIT_REMEDIATION_RETRY_BASE_S
    poll_s: float = 1.0  # ROTAUDIT_REMEDIATION_POLL_S


REMEDIATION_FULL = RemediationProfile(
    messages=0,
    replicas=3,
    send_s=60.0,
    timeline=(
        (0.15, "kill"),
        (0.35, "kill"),
        (0.5, "stall"),
        (0.7, "kill"),
        (0.9, "rolling"),
        (1.2, "kill"),
        (1.5, "kill"),
    ),
    stall_s=5.0,
    failure_kinds=(),
    fault_rate=0.03,
    settle_timeout_s=300.0,
    copies=2,
)
# In `make test` (tests/e2e/test_chaos.py): every scenario once, two SIGKILLs while rotations fail, one while
# remediation runs on.
REMEDIATION_SHORT = RemediationProfile(
    messages=0,
    replicas=3,
    send_s=15.0,
    timeline=((0.3, "kill"), (0.8, "kill"), (1.6, "kill")),
    stall_s=0.0,
    failure_kinds=(),
    fault_rate=0.02,
    settle_timeout_s=150.0,
    copies=0,
)


def remediation_env(proxy_url: str, stack: dict[str, str], profile: RemediationProfile) -> dict[str, str]:
    """A replica's settings in the remediation profile: a short settle, fast retries and polls, no age scan."""
    return {
        **replica_env(proxy_url, stack),
        "ROTAUDIT_REMEDIATION_SETTLE_S": str(profile.settle_s),
        "ROTAUDIT_REMEDIATION_RETRY_BASE_S": str(profile.retry_base_s),
        "ROTAUDIT_REMEDIATION_POLL_S": str(profile.poll_s),
        "ROTAUDIT_SCAN_ENABLED": "false",
    }
