"""Runs the real `Daemon` on its own event loop in a thread, so sync tests can drive AWS meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from daemon.app import Daemon
from daemon.config import Config
from daemon.metrics import Metrics


class DaemonThread:
    def __init__(self, config: Config) -> None:
        self.metrics = Metrics()
        self.daemon: Daemon | None = None
        self.config = config
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def go() -> int:
            self._loop = asyncio.get_running_loop()
            self.daemon = Daemon(self.config, metrics=self.metrics)
            return await self.daemon.run(install_signals=False)

        try:
            self.exit_code = asyncio.run(go())
        except BaseException as exc:  # the test asserts on it
            self.error = exc

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not (self.daemon and self.daemon.started):
            if self.error is not None or not self._thread.is_alive():
                raise AssertionError(f"daemon did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise AssertionError("daemon did not start within 30s")
            time.sleep(0.05)
        return self

    def stop(self, timeout_s: float = 30) -> None:
        if self._loop is not None and self.daemon is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.daemon.request_stop, "test")
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "daemon did not stop"

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or None)
        return float(value or 0.0)
