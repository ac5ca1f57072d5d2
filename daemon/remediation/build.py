"""Builds one replica's remediator from `Config`, with its claim store, attempt ledger and notifier injected."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Sequence

from daemon.aws import Aws
from daemon.config import Config
from daemon.remediation.budget import AttemptLedger
from daemon.remediation.claims import ClaimStore
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.notify import NoticeListener, Notifier
from daemon.remediation.plan import RETRY_BASE_S, RETRY_CAP_S
from daemon.remediation.remediator import Remediator
from daemon.remediation.world import World
from daemon.timer import Clock, utc_now

# A `sending` marker older than this, left by a replica that died mid-publish, is sent again by the next replica
# that asks. Shorter than the queue's visibility timeout (60 s), so the redelivered RotationSucceeded re-sends it.
NOTICE_STALE_S = 45.0


def build_remediator(
    aws: Aws,
    config: Config,
    metrics: RemediationMetrics,
    *,
    clock: Clock = utc_now,
    rng: random.Random | None = None,
    holder: str = "",
    retry_base_s: float = RETRY_BASE_S,
    retry_cap_s: float = RETRY_CAP_S,
    world: World | None = None,
    notice_listeners: Sequence[NoticeListener] = (),
) -> Remediator:
    """The remediator the settings describe; `holder` names this replica on its claims (default: host/pid/random)."""
    holder = holder or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    table, lease_s = config.audit_table, config.claim_lease_s
    return Remediator(
        world or World(aws, table),
        config,
        claims=ClaimStore(aws, table, holder=holder, lease_s=lease_s, clock=clock),
        attempts=AttemptLedger(aws, table, clock=clock),
        notifier=Notifier(
            aws,
            table,
            config.sns_topic_arn,
            metrics,
            clock=clock,
            stale_after_s=NOTICE_STALE_S,
            listeners=notice_listeners,
        ),
        metrics=metrics,
        clock=clock,
        rng=rng,
        retry_base_s=retry_base_s,
        retry_cap_s=retry_cap_s,
    )
