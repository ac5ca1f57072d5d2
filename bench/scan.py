"""The age-scan benchmark: 10,000 Managed=true secrets scanned and audited by rotaudit and by the seed's Lambda.

For each latency (default 0 and 20 ms injected per AWS call) one emulator process (`python -m bench.scan_emulator`:
the project's emulator, seeded in-process with the secrets and decoys of `bench.scan_emulator.plan_inventory`)
serves both contenders in turn, each in its own process (`python -m bench.scan_contender`) writing to a fresh
table: rotaudit's real scanner (`daemon.scan.scanner.scan_secrets`: ListSecrets pages, exact tag re-check, a version
lookup only where it can change the verdict, BatchWriteItem) against the tutorial's handler (`bench.seed_scan`:
ListSecrets pages, one PutItem per secret in sequence). The emulator counts every AWS call each one makes.
The target, at least 10x the baseline's speed, is judged where latency is injected: with none, both contenders
share two CPUs with the emulator and measure its CPU more than their own design.

    .venv/bin/python -m bench.scan [--secrets 10000] [--latency-ms 0,20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from bench import results
from bench.contenders import ROOT, clean_env
from bench.harness import BenchError, EmulatorProcess
from bench.scan_emulator import MAX_AGE_DAYS, REGION, SEED
from daemon.table import table_definition

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
CONTENDERS = ("rotaudit", "baseline")
MIN_VS_BASELINE = 10.0
SEED_START_TIMEOUT_S = 300.0  # seeding 10,000 secrets takes seconds, more on a loaded machine


def seed_table(name: str) -> dict[str, Any]:
    """The tutorial's audit table: key (secret_name, run_id), as its Terraform makes it."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "secret_name", "AttributeType": "S"},
            {"AttributeName": "run_id", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "secret_name", "KeyType": "HASH"},
            {"AttributeName": "run_id", "KeyType": "RANGE"},
        ],
    }


def _count_rows(dynamodb: Any, table: str, contender: str) -> int:
    """The scan rows a contender wrote: rotaudit's `kind=scan` items (it also writes a run item), the seed's all."""
    extra: dict[str, Any] = {}
    if contender == "rotaudit":
        extra = {
            "FilterExpression": "#kind = :scan",
            "ExpressionAttributeNames": {"#kind": "kind"},
            "ExpressionAttributeValues": {":scan": {"S": "scan"}},
        }
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT", **extra)
    return sum(int(page["Count"]) for page in pages)


def measure(
    name: str, emulator: EmulatorProcess, inventory: dict[str, Any], *, timeout_s: float, rep: int, out_dir: Path
) -> dict[str, Any]:
    """A fresh table, one run of `name` in its own process, its figures; the table is deleted afterwards."""
    dynamodb = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=emulator.endpoint_url,
        aws_access_key_id="testing",  # the emulator's; never the caller's (nothing may reach AWS)
        aws_secret_access_key="testing",
    )
    tag = f"{emulator.latency_ms:g}ms"
    table = f"bench-scan-{name}-{tag}-{uuid.uuid4().hex[:6]}"
    dynamodb.create_table(**(table_definition(table) if name == "rotaudit" else seed_table(table)))
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    out = out_dir / f"scan-{tag}-{name}-{rep}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "bench.scan_contender", name, "--endpoint-url", emulator.endpoint_url]
    argv += ["--table", table, "--out", str(out), "--max-age-days", str(MAX_AGE_DAYS)]
    stderr_path = out_dir / f"scan-{tag}-{name}.stderr"
    try:
        emulator.reset_stats()
        emulator_cpu_s = emulator.cpu_seconds()
        with (out_dir / f"scan-{tag}-{name}.stdout").open("wb") as stdout, stderr_path.open("wb") as stderr:
            try:
                code = subprocess.run(
                    argv, env=clean_env(), cwd=ROOT, stdout=stdout, stderr=stderr, timeout=timeout_s, check=False
                ).returncode
            except subprocess.TimeoutExpired:
                raise BenchError(f"scan: {name} did not finish within {timeout_s:.0f}s") from None
        emulator_cpu_s = emulator.cpu_seconds() - emulator_cpu_s
        calls = {op: n for op, n in sorted(emulator.stats().items()) if n > 0}
        if code != 0 or not out.exists():
            tail = stderr_path.read_text()[-2000:]
            raise BenchError(f"scan: {name} exited with {code}; stderr tail:\n{tail}")
        rows = _count_rows(dynamodb, table, name)
    finally:
        dynamodb.delete_table(TableName=table)
    figures: dict[str, Any] = json.loads(out.read_text())
    managed = int(inventory["managed"])
    if rows != managed or figures["checked"] != managed:
        raise BenchError(f"scan: {name} checked {figures['checked']} and wrote {rows} rows; expected {managed}")
    total_calls = sum(calls.values())
    return {
        **figures,
        "latency_ms": emulator.latency_ms,
        "repeat": rep,
        "secrets_listed": int(inventory["secrets"]),
        "managed": managed,
        "rows": rows,
        "flagged_expected": int(inventory["flagged"]),
        "secrets_per_s": round(managed / figures["seconds"], 1),
        "cpu_ms_per_secret": round(1000 * figures["cpu_s"] / managed, 4),
        "aws_calls": total_calls,
        "aws_calls_by_operation": calls,
        "aws_calls_per_secret": round(total_calls / managed, 4),
        "emulator_cpu_s": round(emulator_cpu_s, 2),
        "scan_rss_mb": round(figures["peak_rss_mb"] - figures["rss_before_mb"], 1),
    }


def _best(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fastest run per (contender, latency), with every run's seconds beside it."""
    chosen: dict[tuple[str, float], dict[str, Any]] = {}
    for run in runs:
        key = (run["contender"], run["latency_ms"])
        seconds_all = [*chosen.get(key, {}).get("seconds_all", []), run["seconds"]]
        if key not in chosen or run["seconds"] < chosen[key]["seconds"]:
            chosen[key] = dict(run)
        chosen[key]["seconds_all"] = seconds_all
    return list(chosen.values())


def ratios_and_targets(best: list[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """rotaudit against the baseline per latency; the speed target wherever latency was injected."""
    ratios: dict[str, dict[str, float]] = {}
    targets: list[dict[str, Any]] = []
    by_key = {(run["contender"], run["latency_ms"]): run for run in best}
    for (contender, latency), ours in by_key.items():
        theirs = by_key.get(("baseline", latency))
        if contender != "rotaudit" or theirs is None:
            continue
        entry = {
            "throughput_vs_baseline": round(theirs["seconds"] / ours["seconds"], 2),
            "aws_calls_vs_baseline": round(ours["aws_calls"] / theirs["aws_calls"], 3),
            "cpu_vs_baseline": round(ours["cpu_s"] / theirs["cpu_s"], 3) if theirs["cpu_s"] else float("nan"),
            "peak_rss_vs_baseline": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 2),
        }
        ratios[f"{latency:g}ms"] = entry
        if latency > 0:
            value = entry["throughput_vs_baseline"]
            targets.append(
                {
                    "target": f"scan throughput vs baseline >= {MIN_VS_BASELINE:g}",
                    "latency": f"{latency:g}ms",
                    "value": value,
                    "pass": value >= MIN_VS_BASELINE,
                }
            )
    return ratios, targets


def run(
    *,
    secrets: int = 10_000,
    latencies: list[float] | None = None,
    repeat: int = 2,
    baseline_repeat: int = 1,
    only: list[str] | None = None,
    timeout_s: float = 1800.0,
    out_dir: Path = OUT_DIR,
) -> dict[str, Any]:
    """Every contender at every latency; returns the `scan` section of bench/results.json."""
    latencies = [0.0, 20.0] if latencies is None else latencies
    order = [name for name in CONTENDERS if name in (only or CONTENDERS)]
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    inventory: dict[str, Any] = {}
    for latency in latencies:
        emulator = EmulatorProcess(
            latency,
            out_dir,
            "bench.scan_emulator",
            name="scan-emulator",
            extra_args=("--secrets", str(secrets), "--seed", str(SEED)),
            start_timeout_s=SEED_START_TIMEOUT_S,
        )
        try:
            inventory = emulator.announcement["inventory"]
            plan = [
                (rep, name)
                for rep in range(max(repeat, baseline_repeat))
                for name in order
                if rep < (baseline_repeat if name == "baseline" else repeat)
            ]
            for rep, name in plan:
                figures = measure(name, emulator, inventory, timeout_s=timeout_s, rep=rep, out_dir=out_dir)
                runs.append(figures)
                print(
                    f"bench scan: {latency:g} ms {name:<8} #{rep + 1} {figures['seconds']:8.2f} s "
                    f"{figures['aws_calls']:6d} calls  {figures['cpu_s']:6.2f} CPU s  "
                    f"peak {figures['peak_rss_mb']:.0f} MB  flagged {figures['flagged']}/{figures['flagged_expected']}",
                    flush=True,
                )
        finally:
            emulator.stop()
    best = _best(runs)
    ratios, targets = ratios_and_targets(best)
    return {
        "parameters": {
            "secrets_managed": secrets,
            "inventory": inventory,
            "max_age_days": MAX_AGE_DAYS,
            "latency_ms": latencies,
            "repeat": repeat,
            "baseline_repeat": baseline_repeat,
            "contenders": order,
            "emulator": "python -m bench.scan_emulator (daemon.devtools.emulator, seeded in-process)",
            "emulator_changes": [
                "ListSecrets renders only the page it returns (stock moto renders every match per call)",
                "ListSecretVersionIds reports true CreatedDate (stock moto reports now)",
            ],
            "wall_clock_s": round(time.monotonic() - started, 1),
        },
        "best": best,
        "runs": runs,
        "ratios": ratios,
        "targets": targets,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000, help="Managed=true secrets (a fifth more decoys)")
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated injected latencies per AWS call")
    parser.add_argument("--repeat", type=int, default=2, help="rotaudit runs per latency; the fastest counts")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="baseline runs per latency")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="give up on a contender after this long")
    parser.add_argument("--out", type=Path, default=results.RESULTS, help="results file; its scan section is replaced")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    latencies = [float(part) for part in args.latency_ms.split(",") if part.strip()]
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    os.environ.clear()
    os.environ.update(clean_env())  # fake credentials for every client here: nothing reaches AWS
    try:
        section = run(
            secrets=args.secrets,
            latencies=latencies,
            repeat=args.repeat,
            baseline_repeat=args.baseline_repeat,
            only=only,
            timeout_s=args.timeout_s,
        )
    except BenchError as exc:
        print(f"bench scan: {exc}", file=sys.stderr)
        return 1
    path = results.update({"scan": section}, args.out)
    print(results.scan_summary(section))
    print(f"bench scan: wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
