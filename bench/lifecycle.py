"""The daemon's lifecycle costs: time to ready, idle and loaded memory, and time to exit on SIGTERM.

Each run starts `rotaudit run` (`python -m daemon run`) as a subprocess against the project's emulator (no added
latency) and fresh resources:
- **idle**: the deployed defaults (every feature on, 20 s long polls) on an empty queue. *Time to ready* runs from
  the process's start to the first 200 from /readyz; *idle RSS* is the largest resident size seen over the next
  few seconds; then SIGTERM, and *time to exit* runs from the signal to exit code 0 (a long poll is in flight).
- **loaded**: the ingest benchmark's workload (`bench.workload`, a third duplicates) prefilled, the daemon set up
  as in the ingest benchmark (remediation and the age scan off: the workload's secrets do not exist), until every
  message is deleted. *Loaded peak RSS* is the kernel's high-water mark (VmHWM) for the process; then SIGTERM.
Figures are medians over the runs.

    .venv/bin/python -m bench.lifecycle [--runs 3] [--messages 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import results
from bench.contenders import INGEST_ONLY, ROOT, Contender, clean_env, free_port, http_get
from bench.harness import BenchError, EmulatorProcess
from bench.workload import build_workload, clean_up, prepare

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
READY_TIMEOUT_S = 90.0
EXIT_TIMEOUT_S = 60.0
POLL_S = 0.01


def proc_status_mb(pid: int, field: str) -> float:
    """A size field of /proc/<pid>/status (VmRSS, VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {field} in /proc/{pid}/status")


def _metric(port: int, name: str) -> float:
    _, text = http_get(f"http://127.0.0.1:{port}/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def _start(
    endpoint_url: str, stack: dict[str, str], out_dir: Path, tag: str, **settings: str
) -> tuple[Contender, float]:
    """`rotaudit run` on `stack`; returns it and its time to ready (process start to /readyz 200)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_env(
        AWS_ENDPOINT_URL=endpoint_url,
        ROTAUDIT_QUEUE_URL=stack["queue_url"],
        ROTAUDIT_AUDIT_TABLE=stack["table_name"],
        ROTAUDIT_SNS_TOPIC_ARN=stack["topic_arn"],
        ROTAUDIT_HTTP_HOST="127.0.0.1",
        ROTAUDIT_HTTP_PORT=str(port),
        ROTAUDIT_LOG_FORMAT="json",
        ROTAUDIT_LOG_LEVEL="warning",
        **settings,
    )
    stdout_path, stderr_path = out_dir / f"lifecycle-{tag}.stdout", out_dir / f"lifecycle-{tag}.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "daemon", "run"], env=env, cwd=ROOT, stdout=out, stderr=err)
    daemon = Contender(f"rotaudit ({tag})", process, stdout_path, stderr_path, port)
    deadline = started + READY_TIMEOUT_S
    while not daemon.is_ready():
        if process.poll() is not None:
            raise BenchError(f"lifecycle: exited before ready: {daemon.describe_failure()}")
        if time.perf_counter() > deadline:
            daemon.stop()
            raise BenchError(f"lifecycle: not ready within {READY_TIMEOUT_S:.0f}s")
        time.sleep(POLL_S)
    return daemon, time.perf_counter() - started


def _terminate(daemon: Contender) -> float:
    """SIGTERM; seconds from the signal to exit code 0."""
    started = time.perf_counter()
    code = daemon.stop(timeout_s=EXIT_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"lifecycle: exit code {code} after SIGTERM: {daemon.describe_failure()}")
    return elapsed


def idle_run(endpoint_url: str, out_dir: Path, n: int, idle_s: float) -> dict[str, float]:
    stack = prepare(endpoint_url, f"bench-life-idle-{uuid.uuid4().hex[:6]}", [])
    try:
        daemon, ready_s = _start(endpoint_url, stack, out_dir, f"idle-{n}")
        try:
            rss = 0.0
            until = time.perf_counter() + idle_s
            while time.perf_counter() < until:  # the observation window is the measurement
                rss = max(rss, proc_status_mb(daemon.pid, "VmRSS"))
                time.sleep(0.1)
            if not daemon.is_ready():
                raise BenchError("lifecycle: the idle daemon stopped being ready")
        finally:
            exit_s = _terminate(daemon)
    finally:
        clean_up(endpoint_url, stack)
    return {"ready_s": round(ready_s, 3), "idle_rss_mb": round(rss, 1), "exit_s": round(exit_s, 3)}


def loaded_run(endpoint_url: str, out_dir: Path, n: int, messages: int, timeout_s: float) -> dict[str, float]:
    workload = build_workload(messages)
    stack = prepare(endpoint_url, f"bench-life-load-{uuid.uuid4().hex[:6]}", workload.bodies)
    try:
        daemon, ready_s = _start(endpoint_url, stack, out_dir, f"loaded-{n}", ROTAUDIT_WAIT_TIME_S="1", **INGEST_ONLY)
        try:
            started = time.perf_counter()
            while _metric(daemon.http_port, "rotaudit_messages_deleted_total") < workload.messages:
                if daemon.process.poll() is not None:
                    raise BenchError(f"lifecycle: exited while draining: {daemon.describe_failure()}")
                if time.perf_counter() - started > timeout_s:
                    raise BenchError(f"lifecycle: {workload.messages} messages not drained within {timeout_s:.0f}s")
                time.sleep(0.2)
            drain_s = time.perf_counter() - started
            peak = proc_status_mb(daemon.pid, "VmHWM")
        finally:
            exit_s = _terminate(daemon)
    finally:
        clean_up(endpoint_url, stack)
    return {
        "ready_s_prefilled": round(ready_s, 3),
        "loaded_peak_rss_mb": round(peak, 1),
        "drain_s": round(drain_s, 2),
        "exit_s_after_drain": round(exit_s, 3),
    }


def run(
    *, runs: int = 3, messages: int = 2000, idle_s: float = 3.0, timeout_s: float = 600.0, out_dir: Path = OUT_DIR
) -> dict[str, Any]:
    """`runs` idle and `runs` loaded runs, interleaved; returns the `lifecycle` section of bench/results.json."""
    started = time.monotonic()
    emulator = EmulatorProcess(0.0, out_dir, "daemon.devtools.emulator", name="lifecycle-emulator")
    samples: list[dict[str, float]] = []
    try:
        for n in range(runs):
            idle = idle_run(emulator.endpoint_url, out_dir, n, idle_s)
            loaded = loaded_run(emulator.endpoint_url, out_dir, n, messages, timeout_s)
            samples.append(idle | loaded)
            print(
                f"bench lifecycle: #{n + 1} ready {idle['ready_s']:.2f} s, idle {idle['idle_rss_mb']:.0f} MB, "
                f"exit {idle['exit_s']:.2f} s; loaded peak {loaded['loaded_peak_rss_mb']:.0f} MB "
                f"({messages} messages in {loaded['drain_s']:.1f} s), exit {loaded['exit_s_after_drain']:.2f} s",
                flush=True,
            )
    finally:
        emulator.stop()
    median = {key: round(statistics.median(s[key] for s in samples), 3) for key in samples[0]}
    return {
        "parameters": {
            "runs": runs,
            "messages": messages,
            "idle_window_s": idle_s,
            "emulator": "python -m daemon.devtools.emulator, no added latency",
            "idle_config": "deployed defaults (all features on, 20 s long polls)",
            "loaded_config": "as the ingest benchmark: remediation and scan off, 1 s long polls",
            "wall_clock_s": round(time.monotonic() - started, 1),
        },
        "median": median,
        "runs": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="idle and loaded runs each; medians are reported")
    parser.add_argument("--messages", type=int, default=2000, help="messages drained in a loaded run")
    parser.add_argument("--idle-s", type=float, default=3.0, help="how long idle memory is watched")
    parser.add_argument("--out", type=Path, default=results.RESULTS, help="results file (lifecycle section)")
    args = parser.parse_args(argv)
    os.environ.clear()
    os.environ.update(clean_env())  # fake credentials for every client here: nothing reaches AWS
    try:
        section = run(runs=args.runs, messages=args.messages, idle_s=args.idle_s)
    except BenchError as exc:
        print(f"bench lifecycle: {exc}", file=sys.stderr)
        return 1
    path = results.update({"lifecycle": section}, args.out)
    print(results.lifecycle_summary(section))
    print(f"bench lifecycle: wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
