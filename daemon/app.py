"""Composition root and supervisor: build the parts from `Config`, start, serve, drain on a signal.

One wiring path: open AWS, check the table and resolve the DLQ (start-up checks), build the features (their
hooks and jobs), then the processor with those hooks and the consumer with that DLQ; then serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.config import Config
from daemon.consumer import Consumer
from daemon.errors import EXIT_FORCED, EXIT_OK, StartupError
from daemon.features import Job, build_features
from daemon.health import HealthServer
from daemon.logs import get_logger
from daemon.metrics import Metrics
from daemon.processor import Processor
from daemon.queues import resolve_dlq_url
from daemon.trail import check_cloudtrail

STARTUP_TIMEOUT_S = 30.0


class Daemon:
    """The running daemon. `run()` returns the process exit code."""

    def __init__(self, config: Config, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self.stop = asyncio.Event()
        self.started = False
        self.http_port = config.http_port
        self.log = get_logger("daemon")
        self._consumer: Consumer | None = None
        self._signals = 0

    def request_stop(self, reason: str = "requested") -> None:
        if not self.stop.is_set():
            self.log.info("daemon.stopping", reason=reason)
        self.stop.set()
        self.metrics.ready.set(0)

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            self.log.warning("daemon.forced_exit", signal=signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        self.request_stop(signal.Signals(signum).name)

    def live(self) -> tuple[bool, str]:
        consumer = self._consumer
        if consumer is None:
            return (not self.started, "starting")
        stale_after_s = max(120.0, 2.0 * self.config.visibility_timeout_s)
        now = time.monotonic()
        stale = [n for n, beat in consumer.heartbeats.items() if now - beat > stale_after_s]
        if stale:
            return False, f"pollers {stale} silent for over {stale_after_s:.0f}s"
        if self.started and not self.stop.is_set() and len(consumer.heartbeats) < consumer.pollers:
            return False, "a poller has stopped"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self.stop.is_set():
            return False, "draining"
        if not self.started:
            return False, "starting"
        return True, "ok"

    async def run(self, *, install_signals: bool = True, on_ready: Callable[[int], None] | None = None) -> int:
        loop = asyncio.get_running_loop()
        if install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await self._run(on_ready)
        finally:
            if install_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)

    async def _supervise(self, name: str, job: Job, drain_timeout_s: float) -> None:
        """Run a periodic job; once stopping, give it the drain budget, then cancel it (its work is durable and
        resumable: claims and scan leases are taken over), so a SIGTERM never outlasts ECS's stopTimeout."""
        task = asyncio.create_task(job(self.stop), name=name)
        stopping = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), drain_timeout_s)
                except TimeoutError:
                    self.log.warning("daemon.job_cancelled", job=name, after_s=drain_timeout_s)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return
            await task  # a job that crashed ends the daemon with exit code 1, as before
        finally:
            stopping.cancel()
            if not task.done():
                task.cancel()

    async def _run(self, on_ready: Callable[[int], None] | None) -> int:
        config = self.config
        async with AsyncExitStack() as stack:
            aws = await stack.enter_async_context(
                Aws(
                    config.aws_region,
                    endpoint_url=config.aws_endpoint_url,
                    metrics=self.metrics,
                    max_attempts=config.aws_max_attempts,
                    pool_size=max(32, config.consumer_concurrency * 4 + config.max_in_flight // 5),
                    read_timeout_s=config.wait_time_s + 20,
                    profile=config.aws_profile,
                )
            )
            store = AuditStore(aws, config.audit_table)
            try:
                async with asyncio.timeout(STARTUP_TIMEOUT_S):
                    _, dlq_url, _ = await asyncio.gather(
                        store.check_ready(),
                        resolve_dlq_url(aws, config.queue_url, config.dlq_url),
                        check_cloudtrail(aws, self.metrics),  # says so when no trail logs; never refuses to start
                    )
            except TimeoutError:
                raise StartupError(f"AWS did not answer the start-up checks within {STARTUP_TIMEOUT_S:.0f}s") from None
            features = build_features(aws, config, self.metrics, dlq_url=dlq_url)
            processor = Processor(
                store,
                self.metrics,
                allowed_accounts=config.allowed_accounts,
                allowed_regions=config.allowed_regions,
                hooks=features.hooks,
            )
            consumer = Consumer(
                aws,
                processor,
                self.metrics,
                queue_url=config.queue_url,
                dlq_url=dlq_url,
                pollers=config.consumer_concurrency,
                max_in_flight=config.max_in_flight,
                visibility_timeout_s=config.visibility_timeout_s,
                wait_time_s=config.wait_time_s,
            )
            health = HealthServer(
                self.metrics, live=self.live, ready=self.ready, host=config.http_host, port=config.http_port
            )
            try:
                self.http_port = await health.start()
            except OSError as exc:
                raise StartupError(f"cannot serve HTTP on {config.http_host}:{config.http_port}: {exc}") from None
            stack.push_async_callback(health.stop)
            self._consumer = consumer
            self.started = True
            self.metrics.ready.set(0 if self.stop.is_set() else 1)
            self.log.info(
                "daemon.started",
                queue_url=config.queue_url,
                dlq_url=dlq_url,
                table=config.audit_table,
                http_port=self.http_port,
                pollers=config.consumer_concurrency,
            )
            if on_ready is not None:
                on_ready(self.http_port)
            async with asyncio.TaskGroup() as group:
                group.create_task(consumer.run(self.stop, config.drain_timeout_s), name="consumer")
                for name, job in features.jobs.items():
                    group.create_task(self._supervise(name, job, config.drain_timeout_s), name=name)
        self.log.info("daemon.stopped")
        return EXIT_OK
