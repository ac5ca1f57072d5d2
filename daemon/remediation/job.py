"""The remediation job: every few seconds, on every replica, carry on the claims that are due.

Due claims are scheduled `RotateSecret` retries and the work of holders that died (their lease ran out); the
wake-up items of `daemon.remediation.claims` find them with one key-only Query. Claims make it safe for every
replica to run it.
"""

from __future__ import annotations

import asyncio

from daemon.errors import AwsError
from daemon.logs import get_logger
from daemon.remediation.remediator import Remediator
from daemon.timer import every


class RetryJob:
    """The periodic job: every `poll_s`, carry on every due claim (scheduled retries, dead holders' work)."""

    def __init__(self, remediator: Remediator, *, poll_s: float = 15.0, batch: int = 25) -> None:
        self.remediator = remediator
        self.poll_s = poll_s
        self.batch = batch
        self.log = get_logger("remediation")

    async def run(self, stop: asyncio.Event) -> None:
        """Every `poll_s` until `stop`; a failed run is logged and the next one tries again."""
        await every(self.poll_s, stop, lambda: self.run_once(stop), on_error=self._failed)

    def _failed(self, exc: AwsError) -> None:
        self.log.warning("remediation.job_failed", error=str(exc))

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Carry on the claims due now, until `stop`; how many wake-ups were handled.

        A stop ends the batch between two claims: what is left stays due for another replica.
        """
        wakes = await self.remediator.claims.due(self.batch)
        for handled, wake in enumerate(wakes):
            if stop is not None and stop.is_set():
                return handled
            try:
                await self.remediator.resume(wake)
            except AwsError as exc:
                self.log.warning("remediation.resume_failed", error=str(exc), rotation_id=wake.get("rotation_id", ""))
        return len(wakes)
