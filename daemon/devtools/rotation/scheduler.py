"""The background thread rotations run on: callables due at a time, run one at a time, in order."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)


class Scheduler:
    """A single daemon thread running each scheduled callable when it falls due (started on first use).

    One thread is enough: a step is a few dictionary operations. Rotations of different secrets interleave
    step by step, as AWS's do; the API calls the emulator serves meanwhile run on werkzeug's own threads.
    """

    def __init__(self, name: str = "rotation-engine") -> None:
        self._name = name
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = 0  # callables taken off the queue and not finished yet

    def call_later(self, delay_s: float, job: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._queue, (time.monotonic() + max(0.0, delay_s), next(self._order), job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def busy(self) -> bool:
        """True while a callable runs (one taken off the queue and not finished)."""
        with self._wake:
            return self._running > 0

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                _, _, job = heapq.heappop(self._queue)
                self._running += 1
            try:
                job()
            except Exception:  # a bug in a step must not stop every later rotation
                _log.exception("rotation engine job failed")
            finally:
                with self._wake:
                    self._running -= 1
