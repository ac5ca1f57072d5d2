"""bench/results.json (ingest, scan, lifecycle, latency sections) and the README's performance table (results.md).

Each benchmark replaces its own section, so `python -m bench.scan` alone keeps the last ingest figures. The table
puts rotaudit beside what it is compared with, the ratio, the target and PASS/MISS; the per-contender tables go to
bench/results-detail.md.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import latency_report, report

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"
SECTIONS = ("ingest", "scan", "lifecycle", "latency")


def load(path: Path = RESULTS) -> dict[str, Any]:
    """The results so far; a file from before the sections existed is the ingest section."""
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    if "best" in data and "ingest" not in data:
        return {"date": data.get("date", ""), "machine": data.get("machine", {}), "ingest": data}
    return data


def update(sections: dict[str, dict[str, Any]], path: Path = RESULTS) -> Path:
    """Replace `sections` in the results file, then rewrite it, results.md and results-detail.md beside it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = load(path)
    for name, section in sections.items():
        merged[name] = {"date": now, **section}
    targets = [{"benchmark": name, **row} for name in SECTIONS for row in merged.get(name, {}).get("targets", [])]
    merged |= {"date": now, "machine": report.machine(), "targets": targets}
    merged["all_targets_met"] = bool(targets) and all(row["pass"] for row in targets)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = {
        key: merged[key] for key in ("date", "machine", *SECTIONS, "targets", "all_targets_met") if key in merged
    }
    path.write_text(json.dumps(ordered, indent=2, allow_nan=False) + "\n")
    path.with_suffix(".md").write_text(markdown(ordered))
    path.with_name(path.stem + "-detail.md").write_text(detail(ordered))
    return path


# --- the one table ------------------------------------------------------------------------------------------------
def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _find(runs: list[dict[str, Any]], contender: str, latency: float) -> dict[str, Any] | None:
    return next((r for r in runs if r["contender"] == contender and r["latency_ms"] == latency), None)


def _target(section: dict[str, Any], latency: float, prefix: str) -> tuple[str, str]:
    for row in section.get("targets", []):
        if row["latency"] == f"{latency:g}ms" and row["target"].startswith(prefix):
            threshold = row["target"].rsplit(" ", 2)
            return f"{threshold[1].replace('>=', '≥').replace('<=', '≤')} {threshold[2]}", (
                "PASS" if row["pass"] else "MISS"
            )
    return "", ""


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _ingest_rows(section: dict[str, Any]) -> list[str]:
    best, rows = section["best"], []
    latencies = section["parameters"]["latency_ms"]
    for latency in latencies:
        ours = _find(best, "rotaudit", latency)
        if ours is None:
            continue
        for other, prefix in (("baseline", "throughput vs baseline"), ("ceiling", "throughput vs ceiling")):
            theirs = _find(best, other, latency)
            if theirs is None:
                continue
            target, result = _target(section, latency, prefix)
            ratio = theirs["seconds"] / ours["seconds"]
            rows.append(
                _row(
                    f"ingest, {latency:g} ms",
                    "events/s",
                    _num(ours["unique_events_per_s"]),
                    f"{other} {_num(theirs['unique_events_per_s'])}",
                    f"{ratio:.2f}x",
                    f"{target}x" if target else "",
                    result,
                )
            )
    last = latencies[-1]
    ours, theirs = _find(best, "rotaudit", last), _find(best, "baseline", last)
    if ours is not None:
        target, result = _target(section, last, "AWS calls per unique event")
        versus = f"baseline {theirs['aws_calls_per_unique_event']:.3f}" if theirs else ""
        ratio = f"{ours['aws_calls'] / theirs['aws_calls']:.2f}x" if theirs else ""
        calls = ours["aws_calls_per_unique_event"]
        rows.append(_row(f"ingest, {last:g} ms", "AWS calls per event", f"{calls:.3f}", versus, ratio, target, result))
        if theirs:
            cpu = ours["cpu_ms_per_unique_event"], theirs["cpu_ms_per_unique_event"]
            where = f"ingest, {last:g} ms"
            ratio = f"{cpu[0] / cpu[1]:.2f}x"
            rows.append(_row(where, "CPU ms per event", f"{cpu[0]:.2f}", f"baseline {cpu[1]:.2f}", ratio, "", ""))
    return rows


def _scan_rows(section: dict[str, Any]) -> list[str]:
    best, rows = section["best"], []
    latencies = section["parameters"]["latency_ms"]
    count = f"{section['parameters']['secrets_managed']:,} secrets"
    for latency in latencies:
        ours, theirs = _find(best, "rotaudit", latency), _find(best, "baseline", latency)
        if ours is None or theirs is None:
            continue
        target, result = _target(section, latency, "scan throughput vs baseline")
        rows.append(
            _row(
                f"scan, {count}, {latency:g} ms",
                "seconds per scan",
                _num(ours["seconds"]),
                f"baseline {_num(theirs['seconds'])}",
                f"{theirs['seconds'] / ours['seconds']:.1f}x faster",
                f"{target}x" if target else "",
                result,
            )
        )
    last = latencies[-1]
    ours, theirs = _find(best, "rotaudit", last), _find(best, "baseline", last)
    if ours is not None and theirs is not None:
        where = f"scan, {count}, {last:g} ms"
        pairs = (
            ("AWS calls per secret", "aws_calls_per_secret", 3),
            ("CPU ms per secret", "cpu_ms_per_secret", 2),
            ("peak memory, MB", "peak_rss_mb", 0),
        )
        for label, key, digits in pairs:
            ratio = ours[key] / theirs[key] if theirs[key] else math.nan
            versus = f"baseline {_num(theirs[key], digits)}"
            rows.append(_row(where, label, _num(ours[key], digits), versus, f"{ratio:.2f}x", "", ""))
        flagged = f"{ours['flagged']:,}", f"baseline {theirs['flagged']:,}"
        answer = f"{ours['flagged_expected']:,} should be"
        rows.append(
            _row(
                where,
                "secrets flagged",
                *flagged,
                "",
                answer,
                "PASS" if ours["flagged"] == ours["flagged_expected"] else "MISS",
            )
        )
    return rows


def _lifecycle_rows(section: dict[str, Any]) -> list[str]:
    median, params = section["median"], section["parameters"]
    where = f"daemon, median of {params['runs']}"
    messages = f"{params['messages']:,}"
    cells = (
        ("time to ready (start → /readyz 200), s", f"{median['ready_s']:.2f}"),
        ("idle memory (RSS), MB", _num(median["idle_rss_mb"], 0)),
        (f"peak memory draining {messages} messages (VmHWM), MB", _num(median["loaded_peak_rss_mb"], 0)),
        ("SIGTERM → exit 0, idle (long poll in flight), s", f"{median['exit_s']:.2f}"),
        ("SIGTERM → exit 0, after draining, s", f"{median['exit_s_after_drain']:.2f}"),
    )
    return [_row(where, label, value, "", "", "", "") for label, value in cells]


def _dates(merged: dict[str, Any]) -> str:
    """The day the figures were taken, or the first and last day when sections were re-taken alone."""
    days = sorted({str(merged[name].get("date", ""))[:10] for name in SECTIONS if name in merged} - {""})
    days = days or [str(merged.get("date", ""))[:10]]
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def markdown(merged: dict[str, Any]) -> str:
    """The README's performance table, then one paragraph on how the figures were taken."""
    out = [
        "| benchmark | measure | rotaudit | compared with | ratio | target | result |",
        "|:--|:--|--:|:--|--:|:--|:--|",
    ]
    notes: list[str] = []
    machine = merged.get("machine", {})
    if "ingest" in merged:
        out += _ingest_rows(merged["ingest"])
        p = merged["ingest"]["parameters"]
        notes.append(
            f"*ingest*: {p['messages']:,} messages ({p['unique_events']:,} distinct rotation events, "
            f"{p['duplicates']:,} duplicates) drained by rotaudit ({p['workers']} pollers), the seed's consumer "
            "(baseline) and a raw consumer doing the fewest calls (ceiling); fastest of "
            f"{p['repeat']} runs ({p['baseline_repeat']} for the baseline)."
        )
    if "scan" in merged:
        out += _scan_rows(merged["scan"])
        inventory = merged["scan"]["parameters"]["inventory"]
        notes.append(
            f"*scan*: {inventory.get('managed', 0):,} `Managed=true` secrets among {inventory.get('secrets', 0):,} "
            "(never rotated, rotated, overdue, stuck AWSPENDING, tag-edited; `ManagedBy=true`, `Managed=false` and "
            "untagged decoys), scanned and written to a fresh table by rotaudit's scanner and by the seed's Lambda "
            "handler, each in its own process; memory is the process's peak RSS."
        )
    if "lifecycle" in merged:
        out += _lifecycle_rows(merged["lifecycle"])
        notes.append(
            "*daemon*: `rotaudit run` with the deployed defaults for ready, idle and exit; draining as in *ingest*."
        )
    if "latency" in merged:
        out += latency_report.rows(merged["latency"])
        notes.append(latency_report.note(merged["latency"]))
    ratio_note = (
        "Ratios are rotaudit's speed over the other's for events/s and seconds, rotaudit's figure over the other's "
        "otherwise. AWS calls are counted by the emulator. Speed targets against the baseline are judged with "
        "latency injected into every AWS call (with none, everything shares two CPUs with the emulator)."
    )
    out += [
        "",
        " ".join(notes),
        f"moto {machine.get('moto', '?')} in its own process, {machine.get('nproc', '?')} CPUs, "
        f"Python {machine.get('python', '?')}, {_dates(merged)}. {ratio_note} "
        "Per-contender figures: `bench/results-detail.md` and `bench/results.json`.",
    ]
    return "\n".join(out) + "\n"


# --- details and terminal summaries -------------------------------------------------------------------------------
_SCAN_COLUMNS = (
    ("latency_ms", "latency ms"),
    ("contender", "contender"),
    ("seconds_all", "s, each run"),
    ("secrets_per_s", "secrets/s"),
    ("aws_calls", "AWS calls"),
    ("aws_calls_per_secret", "calls/secret"),
    ("cpu_ms_per_secret", "CPU ms/secret"),
    ("emulator_cpu_s", "emulator CPU s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("scan_rss_mb", "RSS growth MB"),
    ("flagged", "flagged"),
    ("flagged_expected", "should flag"),
)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(f"{item:.2f}" for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def scan_table(section: dict[str, Any]) -> str:
    lines = [_row(*(header for _, header in _SCAN_COLUMNS)), "|" + "--:|" * len(_SCAN_COLUMNS)]
    lines += [_row(*(_cell(run.get(key)) for key, _ in _SCAN_COLUMNS)) for run in section["best"]]
    return "\n".join(lines)


def lifecycle_table(section: dict[str, Any]) -> str:
    keys = list(section["median"])
    lines = [_row("run", *keys), "|" + "--:|" * (len(keys) + 1)]
    lines += [_row(str(n + 1), *(_cell(run[key]) for key in keys)) for n, run in enumerate(section["runs"])]
    lines.append(_row("median", *(_cell(section["median"][key]) for key in keys)))
    return "\n".join(lines)


def detail(merged: dict[str, Any]) -> str:
    out = ["# Benchmark details", ""]
    if "ingest" in merged:
        out += ["## Ingest", "", report.markdown(merged["ingest"])]
    if "scan" in merged:
        calls = {run["contender"]: run["aws_calls_by_operation"] for run in merged["scan"]["best"]}
        out += ["## Age scan", "", scan_table(merged["scan"]), "", f"AWS calls by operation: `{json.dumps(calls)}`"]
        out += ["", "Emulator changes: " + "; ".join(merged["scan"]["parameters"]["emulator_changes"]) + ".", ""]
    if "lifecycle" in merged:
        out += ["## Daemon lifecycle", "", lifecycle_table(merged["lifecycle"]), ""]
    if "latency" in merged:
        out += latency_report.detail(merged["latency"])
    return "\n".join(out)


def scan_summary(section: dict[str, Any]) -> str:
    lines = [scan_table(section), ""]
    for latency, entry in section["ratios"].items():
        lines.append(f"scan ratios at {latency}: " + ", ".join(f"{k} {v:g}" for k, v in entry.items()))
    for row in section["targets"]:
        lines.append(f"{'PASS' if row['pass'] else 'MISS'}  {row['target']} at {row['latency']}: {row['value']:g}")
    return "\n".join(lines)


def lifecycle_summary(section: dict[str, Any]) -> str:
    return lifecycle_table(section)
