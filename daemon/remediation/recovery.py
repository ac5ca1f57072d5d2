"""A later success: a RotationSucceeded the secret confirms closes its open failures, and says so once.

A failure still settling closes quietly (Secrets Manager's own retry fixed it; nobody was told). People told about
a failure hear it recovered once; a replica that died mid-publish leaves a marker that goes stale, and the
redelivered event sends the notice again, so it may repeat but is never lost. The success is checked against the
secret itself, never taken on the event's word.
"""

from __future__ import annotations

from daemon.errors import TransientAwsError
from daemon.events import RotationEvent
from daemon.logs import get_logger
from daemon.remediation.claims import ClaimStore
from daemon.remediation.metrics import RemediationMetrics
from daemon.remediation.notify import Delivery, Notifier, notification_for
from daemon.remediation.outcome import RECOVERED, SETTLING, Kind
from daemon.remediation.state import Failure
from daemon.remediation.world import World
from daemon.table import utc_iso


class Recovery:
    """Closes failures a confirmed success recovered."""

    def __init__(self, world: World, claims: ClaimStore, notifier: Notifier, metrics: RemediationMetrics) -> None:
        self.world = world
        self.claims = claims
        self.notifier = notifier
        self.metrics = metrics
        self.log = get_logger("remediation")

    async def _succeeded(self, event: RotationEvent, earliest_failure: str) -> bool:
        """Whether the secret confirms the success, not just the event: "When rotation is successful, the
        AWSPENDING staging label might be attached to the same version as the AWSCURRENT version, or it might not
        be attached to any version" (RotateSecret API reference), and LastRotatedDate follows the failure."""
        state = await self.world.describe(event.secret_arn)
        rotated = state.last_rotated_at is not None and utc_iso(state.last_rotated_at) >= earliest_failure
        if state.pending_dangles or not rotated:
            self.metrics.remediations.labels("none", "unconfirmed").inc()
            self.log.warning("remediation.success_unconfirmed", **_ids(event))
            return False
        return True

    async def on_success(self, event: RotationEvent) -> None:
        """A RotationSucceeded closes the secret's open failures (up to its time); people who were told about
        one hear it recovered, once. A failure still settling closes quietly: Secrets Manager's retry fixed it."""
        cutoff = utc_iso(event.event_time)
        failures = [c for c in await self.claims.open_claims(event.secret_arn) if str(c.get("failed_at")) <= cutoff]
        if not failures or not await self._succeeded(event, min(str(c["failed_at"]) for c in failures)):
            return
        told = sorted(str(c["rotation_id"]) for c in failures if c.get("stage") != SETTLING)
        if told:
            details = {"recovered_rotations": told, "event_id": event.event_id}
            success = Failure.from_event(event)  # the notification's subject: this rotation, which succeeded
            delivered = await self.notifier.send(notification_for(Kind.RECOVERED, success, details, None))
            if delivered is Delivery.IN_FLIGHT:  # a replica died mid-publish, or is publishing: close only once sent
                raise TransientAwsError("sns", "publish", "NotificationInFlight", "the recovered notice is in flight")
        for item in failures:
            quiet = item.get("stage") == SETTLING
            fields = {"stage": RECOVERED, "recovered_by": event.rotation_id}
            if quiet:
                fields["reason"] = "recovered_while_settling"
            closed = await self.claims.close(item, fields)
            self.log.info("remediation.recovered", failed_rotation_id=item["rotation_id"], closed=closed, **_ids(event))


def _ids(event: RotationEvent) -> dict[str, str]:
    return {"event_name": event.event_name, "secret_name": event.secret_name, "rotation_id": event.rotation_id}
