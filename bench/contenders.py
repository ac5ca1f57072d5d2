"""Start each contender as a subprocess against the emulator, tell when it is ready, read its CPU, stop it.

Output goes to files under `bench/out/` (a pipe nobody reads blocks the child once full). The environment is
stripped of the caller's AWS_* and ROTAUDIT_* variables and given fake credentials, so nothing can reach AWS.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.workload import REGION

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("rotaudit", "ceiling", "baseline")
INFO_LOGGING = "rotaudit-info"  # rotaudit again, logging its canonical line per message (one latency only)
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_CLK_TCK = os.sysconf("SC_CLK_TCK")
# The job measured is ingest: audit each distinct event once. The follow-up features (remediation of failed
# rotations, the age scan) act on secrets this workload does not have and write their own items, so they are off;
# the DLQ monitor stays, as deployed (one GetQueueAttributes a minute).
INGEST_ONLY = {"ROTAUDIT_REMEDIATION_MODE": "off", "ROTAUDIT_SCAN_ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update({"AWS_REGION": REGION, "PYTHONUNBUFFERED": "1", **extra})
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310  # our own http:// URL
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class Contender:
    """One running contender."""

    name: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    http_port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_ready(self) -> bool:
        if self.http_port:
            try:
                status, _ = http_get(f"http://127.0.0.1:{self.http_port}/readyz", timeout_s=1.0)
            except OSError:
                return False
            return status == 200
        return "ready" in self.stdout_path.read_text().split()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def own_metrics(self) -> tuple[dict[str, float], float]:
        """rotaudit's own count of AWS calls ("service.operation") and of messages received; empty for others."""
        if not self.http_port:
            return {}, 0.0
        _, text = http_get(f"http://127.0.0.1:{self.http_port}/metrics")
        calls: dict[str, float] = {}
        received = 0.0
        for line in text.splitlines():
            if line.startswith("rotaudit_messages_received_total "):
                received = float(line.split()[-1])
            if not line.startswith("rotaudit_aws_calls_total{"):
                continue
            labels, _, value = line.rpartition(" ")
            parts = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
            calls[f"{parts['service'].strip(chr(34))}.{parts['operation'].strip(chr(34))}"] = float(value)
        return calls, received

    def reported_received(self) -> int | None:
        """The "received N" line the baseline and the ceiling print as they exit."""
        for line in self.stdout_path.read_text().splitlines():
            if line.startswith("received "):
                return int(line.split()[1])
        return None

    def describe_failure(self) -> str:
        tail = self.stderr_path.read_text()[-2000:] if self.stderr_path.exists() else ""
        return f"{self.name} (exit code {self.process.poll()}); stderr tail:\n{tail}"

    def stop(self, timeout_s: float = 40.0) -> int:
        """SIGTERM, then wait; kill only if it will not go. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return -9


def start(
    name: str,
    *,
    endpoint_url: str,
    stack: dict[str, str],
    workers: int,
    wait_time_s: int,
    out_dir: Path,
    tag: str,
) -> Contender:
    """Launch contender `name` (one of CONTENDERS or INFO_LOGGING) on `stack`'s queue and table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = out_dir / f"{tag}-{name}.stdout", out_dir / f"{tag}-{name}.stderr"
    http_port = 0
    queue_args = ["--endpoint-url", endpoint_url, "--queue-url", stack["queue_url"], "--table", stack["table_name"]]
    if name in ("rotaudit", INFO_LOGGING):
        http_port = free_port()
        argv = [sys.executable, "-m", "daemon", "run"]
        env = clean_env(
            AWS_ENDPOINT_URL=endpoint_url,
            ROTAUDIT_QUEUE_URL=stack["queue_url"],
            ROTAUDIT_AUDIT_TABLE=stack["table_name"],
            ROTAUDIT_HTTP_HOST="127.0.0.1",
            ROTAUDIT_HTTP_PORT=str(http_port),
            ROTAUDIT_CONSUMER_CONCURRENCY=str(workers),
            ROTAUDIT_WAIT_TIME_S=str(wait_time_s),
            ROTAUDIT_LOG_LEVEL="info" if name == INFO_LOGGING else "warning",
            ROTAUDIT_LOG_FORMAT="json",
            **INGEST_ONLY,
        )
    elif name == "ceiling":
        argv = [sys.executable, "-m", "bench.ceiling_consumer", *queue_args, "--workers", str(workers)]
        argv += ["--wait-time-s", str(wait_time_s)]
        env = clean_env()
    elif name == "baseline":
        argv = [sys.executable, "-m", "bench.baseline_consumer", *queue_args]
        env = clean_env()
    else:
        raise ValueError(f"unknown contender {name!r}")
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=err)
    return Contender(name, process, stdout_path, stderr_path, http_port)
