"""The chaos run's processes: the emulator, the fault proxy and the daemon replicas, each with its own log files.

Every wait has a deadline and fails with a message naming what did not happen and where its log is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import FAKE_CREDENTIALS, ROOT, free_port

READY_TIMEOUT_S = 90.0  # a replica's start-up on a loaded 2-core machine, through 5% faults
# SIGTERM to exit: ECS's default stopTimeout, after which it SIGKILLs the task (the daemon drains within 20 s).
EXIT_TIMEOUT_S = 30.0


class ChaosError(RuntimeError):
    """The run could not go on: a process did not start, stop or answer in time."""


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AWS or rotaudit settings, with the emulator's fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Process:
    """A child process whose stdout and stderr go to files (a pipe nobody reads would block it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, *, http_port: int = 0) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.http_port = http_port
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=err)
        self.pid = self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ChaosError(f"{self.name} (pid {self.pid}) did not exit within {timeout_s:.0f}s") from None

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit code (None if it never started)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def endpoint(self, timeout_s: float) -> str:
        """The `{"endpoint_url": ...}` line the emulator and the proxy print once they listen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.stdout_path.read_text().splitlines():
                if line.startswith("{"):
                    return str(json.loads(line)["endpoint_url"])
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        failure = ChaosError(f"{self.name} printed no endpoint within {timeout_s:.0f}s: {self.tail()}")
        self.stop(timeout_s=5.0)
        raise failure

    def cpu_s(self) -> float:
        """User + system CPU seconds so far (Linux /proc); 0 once the process is gone."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory in MiB (Linux /proc); 0 once the process is gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "VmRSS: 0 kB")
        return int(line.split()[1]) / 1024

    def tail(self, lines: int = 5) -> str:
        text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        return f"exit={self.popen.poll()}, stderr ends: {' | '.join(text[-lines:])} (see {self.stderr_path})"


def start_emulator(log_dir: Path) -> tuple[Process, str]:
    process = Process(
        "emulator", [sys.executable, "-m", "daemon.devtools.emulator", "--port", "0"], clean_env(), log_dir
    )
    return process, process.endpoint(60.0)


def start_proxy(upstream: str, rate: float, seed: int, log_dir: Path) -> tuple[Process, str]:
    argv = [sys.executable, "-m", "tests.chaos.fault_proxy", "--upstream", upstream, "--rate", str(rate)]
    process = Process("fault-proxy", [*argv, "--seed", str(seed)], clean_env(), log_dir)
    return process, process.endpoint(30.0)


def http_json(url: str, payload: dict[str, Any] | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310  # our http://
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def http_status(url: str, timeout_s: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310  # our own http:// URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class Replica:
    """One `rotaudit run` replica slot: started, killed and restarted by the harness, every incarnation logged."""

    def __init__(self, index: int, env: dict[str, str], log_dir: Path) -> None:
        self.index = index
        self.env = env
        self.log_dir = log_dir
        self.incarnations: list[Process] = []
        self.exit_codes: list[tuple[str, int | None]] = []  # (why it stopped, exit code) per incarnation
        self.expect_exit = False
        self.forced_pids: set[int] = set()  # incarnations SIGKILLed because SIGTERM did not stop them in time

    @property
    def current(self) -> Process:
        return self.incarnations[-1]

    def start(self) -> Process:
        port = free_port()
        env = {**self.env, "ROTAUDIT_HTTP_PORT": str(port)}
        name = f"replica-{self.index}.{len(self.incarnations)}"
        process = Process(name, [sys.executable, "-m", "daemon", "run"], env, self.log_dir, http_port=port)
        self.incarnations.append(process)
        self.expect_exit = False
        return process

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds until /readyz answers 200; ChaosError if the replica exits or stays unready."""
        process = self.current
        started = time.monotonic()
        url = f"http://127.0.0.1:{process.http_port}/readyz"
        while time.monotonic() - started < timeout_s:
            if http_status(url) == 200:
                return time.monotonic() - started
            if process.poll() is not None:
                raise ChaosError(f"{process.name} exited before it was ready: {process.tail()}")
            time.sleep(0.25)
        raise ChaosError(f"{process.name} not ready within {timeout_s:.0f}s: {process.tail()}")

    def kill(self) -> int:
        """SIGKILL the current incarnation and reap it."""
        self.expect_exit = True
        self.current.signal(signal.SIGKILL)
        code = self.current.wait(30.0)
        self.exit_codes.append(("sigkill", code))
        return code

    def terminate(self, why: str, timeout_s: float = EXIT_TIMEOUT_S) -> int | None:
        """SIGTERM the current incarnation; its exit code (a graceful stop must give 0)."""
        self.signal_stop()
        return self.reap(self.current, why, timeout_s)

    def signal_stop(self) -> None:
        self.expect_exit = True
        self.current.signal(signal.SIGTERM)

    def reap(self, process: Process, why: str, timeout_s: float = EXIT_TIMEOUT_S) -> int | None:
        """Wait for a stopped incarnation's exit code and record it; None (recorded as a failure) when it is
        still running after `timeout_s`, as ECS would find it: then it is SIGKILLed, as ECS would do."""
        try:
            code: int | None = process.wait(timeout_s)
        except ChaosError:
            process.signal(signal.SIGKILL)
            process.wait(30.0)
            self.forced_pids.add(process.pid)
            code = None
            why = f"{why} (still running after {timeout_s:.0f}s: SIGKILLed)"
        self.exit_codes.append((why, code))
        return code

    def died_unexpectedly(self) -> int | None:
        """The exit code if the current incarnation exited without the harness asking; else None."""
        code = self.current.poll()
        if code is None or self.expect_exit:
            return None
        self.expect_exit = True
        self.exit_codes.append(("unexpected", code))
        return code
