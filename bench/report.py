"""Turn the runs' figures into ratios, PASS/MISS against the issue's targets, a text table and results files."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# The targets: rotaudit at least 10x the baseline's throughput with latency, at least 0.85x the raw
# ceiling's, and at most 1.3 AWS calls per unique event.
MIN_VS_BASELINE_WITH_LATENCY = 10.0
MIN_VS_CEILING = 0.85
MAX_CALLS_PER_UNIQUE_EVENT = 1.3

_COLUMNS = (
    ("latency", "latency"),
    ("contender", "contender"),
    ("seconds", "s"),
    ("seconds_all", "s, each run"),
    ("messages_per_s", "msgs/s"),
    ("unique_events_per_s", "events/s"),
    ("aws_calls_per_unique_event", "AWS calls/event"),
    ("cpu_ms_per_unique_event", "CPU ms/event"),
    ("cpu_ms_per_message", "CPU ms/msg"),
    ("emulator_cpu_s", "emulator CPU s"),
    ("redeliveries", "redelivered"),
    ("stalled_s", "stalled s"),
)


def best(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fastest run of each contender at each latency (noise on a shared machine only ever adds time),
    with every run's seconds beside it, in first-run order."""
    chosen: dict[tuple[str, float], dict[str, Any]] = {}
    for run in runs:
        key = (run["contender"], run["latency_ms"])
        seconds_all = [*chosen.get(key, {}).get("seconds_all", []), run["seconds"]]
        if key not in chosen or run["seconds"] < chosen[key]["seconds"]:
            chosen[key] = dict(run)
        chosen[key]["seconds_all"] = seconds_all
    return list(chosen.values())


def _find(runs: list[dict[str, Any]], contender: str, latency_ms: float) -> dict[str, Any] | None:
    for run in runs:
        if run["contender"] == contender and run["latency_ms"] == latency_ms:
            return run
    return None


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2) if denominator else float("nan")


def ratios(runs: list[dict[str, Any]], latencies: list[float]) -> dict[str, dict[str, float]]:
    """Per latency ("0ms", "20ms"): rotaudit against the others, from the same run. Throughput = 1/seconds."""
    out: dict[str, dict[str, float]] = {}
    for latency in latencies:
        ours = _find(runs, "rotaudit", latency)
        if ours is None:
            continue
        entry: dict[str, float] = {"rotaudit_aws_calls_per_unique_event": ours["aws_calls_per_unique_event"]}
        for other in ("baseline", "ceiling"):
            theirs = _find(runs, other, latency)
            if theirs is None:
                continue
            entry[f"throughput_vs_{other}"] = _ratio(theirs["seconds"], ours["seconds"])
            entry[f"cpu_per_event_vs_{other}"] = _ratio(ours["cpu_s"], theirs["cpu_s"])
            entry[f"aws_calls_vs_{other}"] = _ratio(ours["aws_calls"], theirs["aws_calls"])
        info = _find(runs, "rotaudit-info", latency)
        if info is not None:
            entry["info_logging_throughput_vs_warning"] = _ratio(ours["seconds"], info["seconds"])
            entry["info_logging_cpu_vs_warning"] = _ratio(info["cpu_s"], ours["cpu_s"])
        out[f"{latency:g}ms"] = entry
    return out


def targets(found: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per target and latency it applies to; the baseline target applies only with latency."""
    rows: list[dict[str, Any]] = []

    def add(name: str, latency: str, value: float | None, threshold: float, at_least: bool) -> None:
        if value is None:
            return
        ok = value >= threshold if at_least else value <= threshold
        sign = ">=" if at_least else "<="
        rows.append({"target": f"{name} {sign} {threshold:g}", "latency": latency, "value": value, "pass": ok})

    for latency, entry in found.items():
        if latency != "0ms":
            add(
                "throughput vs baseline",
                latency,
                entry.get("throughput_vs_baseline"),
                MIN_VS_BASELINE_WITH_LATENCY,
                True,
            )
        add("throughput vs ceiling", latency, entry.get("throughput_vs_ceiling"), MIN_VS_CEILING, True)
        add(
            "AWS calls per unique event",
            latency,
            entry["rotaudit_aws_calls_per_unique_event"],
            MAX_CALLS_PER_UNIQUE_EVENT,
            False,
        )
    return rows


def _cell(run: dict[str, Any], key: str) -> str:
    if key == "latency":
        return f"{run['latency_ms']:g} ms"
    value = run.get(key)
    if value is None:
        return "-"
    if isinstance(value, list):
        return " / ".join(f"{item:.1f}" for item in value)
    if isinstance(value, float):
        return f"{value:.3f}" if key.startswith("cpu") or key.startswith("aws") else f"{value:.1f}"
    return str(value)


def table(runs: list[dict[str, Any]]) -> list[list[str]]:
    return [[header for _, header in _COLUMNS]] + [[_cell(run, key) for key, _ in _COLUMNS] for run in runs]


def text_table(runs: list[dict[str, Any]]) -> str:
    rows = table(runs)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rows = table(result["best"])
    out = [
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(":--" if i < 2 else "--:" for i in range(len(rows[0]))) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    params = result["parameters"]
    machine = result["machine"]
    out += [
        "",
        f"{params['messages']} messages ({params['unique_events']} distinct rotation events, "
        f"{params['duplicates']} exact duplicates, {params['secrets']} secrets), {params['workers']} pollers, "
        f"moto {machine['moto']} in its own process (emulator: {params['emulator']}), {machine['nproc']} CPUs, "
        f"Python {machine['python']}, "
        f"{result['date'][:10]}. AWS calls exclude start-up and the harness's polling; CPU is the consumer "
        "process's user + system time from ready to drained; *emulator CPU s* is the emulator's over the same "
        "window (what the contender's calls, and the harness's polling, cost it). Each row is the fastest of "
        "the runs listed "
        f"({params['repeat']} per contender, {params['baseline_repeat']} for the baseline, interleaved). "
        f"*redelivered*: deliveries beyond the {params['messages']:,} messages; *stalled s*: time with nothing "
        "visible and nothing settling (messages whose delete the emulator lost, waiting out their visibility "
        "timeout).",
        "",
        "| target | latency | rotaudit | result |",
        "|:--|:--|--:|:--|",
    ]
    out += [
        f"| {row['target']} | {row['latency']} | {row['value']:g} | {'PASS' if row['pass'] else 'MISS'} |"
        for row in result["targets"]
    ]
    return "\n".join(out) + "\n"


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), ""
        )
    versions = {name: metadata.version(name) for name in ("moto", "boto3", "aiobotocore")}
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def build_result(runs: list[dict[str, Any]], latencies: list[float], parameters: dict[str, Any]) -> dict[str, Any]:
    fastest = best(runs)
    found = ratios(fastest, latencies)
    rows = targets(found)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "parameters": parameters,
        "best": fastest,
        "runs": runs,
        "ratios": found,
        "targets": rows,
        "targets_thresholds": {
            "min_throughput_vs_baseline_with_latency": MIN_VS_BASELINE_WITH_LATENCY,
            "min_throughput_vs_ceiling": MIN_VS_CEILING,
            "max_aws_calls_per_unique_event": MAX_CALLS_PER_UNIQUE_EVENT,
        },
        "all_targets_met": bool(rows) and all(row["pass"] for row in rows),
    }


def write(result: dict[str, Any], out: Path) -> Path:
    """results.json at `out`, and the README's markdown beside it (same name, .md)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(markdown(result))
    return md


def summary(result: dict[str, Any]) -> str:
    lines = [text_table(result["best"]), ""]
    for latency, entry in result["ratios"].items():
        parts = ", ".join(f"{key} {value:g}" for key, value in entry.items())
        lines.append(f"ratios at {latency}: {parts}")
    lines.append("")
    for row in result["targets"]:
        lines.append(f"{'PASS' if row['pass'] else 'MISS'}  {row['target']} at {row['latency']}: {row['value']:g}")
    return "\n".join(lines)
