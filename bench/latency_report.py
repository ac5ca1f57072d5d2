"""The latency benchmark's figures as text: terminal lines, rows of the README's table, and the alert's derivation."""

from __future__ import annotations

from typing import Any

from daemon.metrics import _LAG_BUCKETS  # the buckets rotaudit_event_lag_seconds is observed into

MEASURED = (
    "per event, from the return of the harness's SendMessage/SendMessageBatch call (SentTimestamp is stamped inside "
    "it) to the return of the first BatchGetItem with ConsistentRead that holds the item; write_started_s ends "
    "instead at the item's recorded_at (the consumer's clock just before its write call), a lower bound"
)
# RotauditEventLagHigh fires when the p95 of rotaudit_event_lag_seconds passes the threshold. That metric stops at
# the start of processing, so it is never above the queue → readable time measured here. The threshold is this
# many times the worst p99 measured (the burst's), raised to the next bucket boundary: at a boundary,
# histogram_quantile's p95 passes it exactly when more than 5% of events waited longer, with no interpolation.
ALERT_FACTOR = 10
ROUND_TRIP_OPERATIONS = (
    "sqs.SendMessage",
    "sqs.ReceiveMessage",
    "sqs.DeleteMessage",
    "dynamodb.PutItem",
    "dynamodb.GetItem",
    "dynamodb.BatchGetItem",
)


def derive_alert(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The RotauditEventLagHigh threshold from rotaudit's p99s at the highest latency (nearest AWS's round trips);
    None without a rotaudit run."""
    ours = max((run for run in runs if run["contender"] == "rotaudit"), key=lambda run: run["latency_ms"], default=None)
    if ours is None:
        return None
    phase = max(("steady", "burst"), key=lambda name: float(ours[name]["readable_s"]["p99"]))
    p99_s = float(ours[phase]["readable_s"]["p99"])
    floor = ALERT_FACTOR * p99_s
    threshold = next((bucket for bucket in _LAG_BUCKETS if bucket >= floor), _LAG_BUCKETS[-1])
    return {
        "basis": f"rotaudit, {phase} phase, {ours['latency_ms']:g} ms per AWS call, p99 queue → readable",
        "phase": phase,
        "latency_ms": ours["latency_ms"],
        "p99_s": p99_s,
        "factor": ALERT_FACTOR,
        "threshold_s": threshold,
        "rule": "RotauditEventLagHigh: p95 of rotaudit_event_lag_seconds over 10m above threshold_s for 10m",
    }


def _ops(trips: dict[str, dict[str, Any]], key: str, digits: int = 1) -> str:
    return " / ".join(f"{trips[op][key]:.{digits}f}" for op in ROUND_TRIP_OPERATIONS if op in trips)


def round_trip_line(trips: dict[str, dict[str, Any]]) -> str:
    names = " / ".join(op.split(".", 1)[1] for op in ROUND_TRIP_OPERATIONS if op in trips)
    return f"({names}) p50 {_ops(trips, 'p50')} ms, p99 {_ops(trips, 'p99')} ms"


def _ms(phase: dict[str, Any], key: str = "readable_s") -> str:
    spread = phase[key]
    return f"{round(1000 * spread['p50']):,d} / {round(1000 * spread['p99']):,d}"  # round(): no "-0"


def _s(phase: dict[str, Any], key: str = "readable_s") -> str:
    spread = phase[key]
    return f"{spread['p50']:.2f} / {spread['p99']:.2f}"


def run_line(run: dict[str, Any]) -> str:
    steady, burst = run["steady"], run["burst"]
    return (
        f"{run['contender']:<9} steady p50/p99 {_ms(steady)} ms (write started {_ms(steady, 'write_started_s')} ms); "
        f"burst of {burst['readable_s']['count']} (sent over {burst['sent_over_s']:.2f} s) p50/p99 {_s(burst)} s, "
        f"last {burst['last_readable_s']:.2f} s after the first send; "
        f"{run['aws_calls_per_event']:.2f} AWS calls/event"
    )


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def rows(section: dict[str, Any]) -> list[str]:
    """Rows of the README's one performance table: rotaudit beside the baseline, and the emulator's own share."""
    p = section["parameters"]
    out: list[str] = []
    for latency in p["latency_ms"]:
        runs = {run["contender"]: run for run in section["runs"] if run["latency_ms"] == latency}
        ours, theirs = runs.get("rotaudit"), runs.get("baseline")
        if ours is None:
            continue
        phases = (
            (f"latency, steady {p['rate_per_s']:g}/s, {latency:g} ms", "steady", "ms", _ms),
            (f"latency, burst of {p['burst_events']:,}, {latency:g} ms", "burst", "s", _s),
        )
        for where, phase, unit, show in phases:
            mine = ours[phase]["readable_s"]["p99"]
            versus, ratio = "", ""
            if theirs is not None:
                versus = f"baseline {show(theirs[phase])}"
                ratio = f"{mine / theirs[phase]['readable_s']['p99']:.2f}x"
            out.append(_row(where, f"queue → readable p50 / p99, {unit}", show(ours[phase]), versus, ratio, "", ""))
        trips = section["emulator_round_trip_ms"].get(f"{latency:g}ms", {})
        names = " / ".join(op.split(".", 1)[1] for op in ROUND_TRIP_OPERATIONS if op in trips)
        measure = f"emulator's own round trip p50, ms ({names})"
        out.append(_row(f"latency, {latency:g} ms", measure, _ops(trips, "p50"), "", "", "", ""))
    alert = section.get("alert")
    if alert:
        where = f"latency, {alert['latency_ms']:g} ms"
        measure = f"RotauditEventLagHigh threshold ({alert['factor']}x {alert['phase']} p99, next lag bucket), s"
        out.append(_row(where, measure, f"{alert['threshold_s']:g}", "", "", "", ""))
    return out


def note(section: dict[str, Any]) -> str:
    p = section["parameters"]
    return (
        f"*latency*: distinct rotation events sent to a running daemon ({p['pollers']} pollers, "
        f"{p['wait_time_s']} s long polls) and to the seed's consumer, {p['steady_events']:,} at {p['rate_per_s']:g}/s "
        f"then {p['burst_events']:,} at once (SendMessageBatch calls, ten at a time); from the send call's return "
        f"to the first consistent read holding the item (polled every {1000 * p['poll_s']:g} ms, jittered); ratio "
        "is rotaudit's p99 over the baseline's."
    )


def table(section: dict[str, Any]) -> str:
    """Per contender and phase: readable and write-started spreads, the last item, the daemon's own lag mean."""
    headers = ("latency ms", "contender", "phase", "events", "sent over, s", "readable p50 / p99 / max, ms")
    more = ("write started p50 / p99, ms", "first sent → last readable, s", "own lag mean, ms")
    lines = [_row(*headers, *more), "|--:|:--|:--|--:|--:|--:|--:|--:|--:|"]
    for run in section["runs"]:
        for name in ("steady", "burst"):
            phase = run[name]
            spread, started = phase["readable_s"], phase["write_started_s"]
            own = phase.get("own_event_lag_mean_s")
            lines.append(
                _row(
                    f"{run['latency_ms']:g}",
                    run["contender"],
                    name,
                    str(spread["count"]),
                    f"{phase['sent_over_s']:.2f}",
                    f"{_ms(phase)} / {round(1000 * spread['max']):,d}",
                    _ms(phase, "write_started_s") if started else "",
                    f"{phase['last_readable_s']:.2f}",
                    f"{round(1000 * own):,d}" if own is not None else "",
                )
            )
    return "\n".join(lines)


def detail(section: dict[str, Any]) -> list[str]:
    trips = section["emulator_round_trip_ms"]
    calls = {f"{run['contender']}, {run['latency_ms']:g} ms": run["aws_calls_by_operation"] for run in section["runs"]}
    out = ["## Latency", "", table(section), ""]
    for latency, figures in trips.items():
        out += [f"Emulator round trips at {latency} added, one call at a time: {round_trip_line(figures)}.", ""]
    out += [f"Measured: {section['parameters']['measured']}.", "", f"AWS calls by operation: `{calls}`", ""]
    if section.get("alert"):
        out += [f"Alert: `{section['alert']}`", ""]
    return out


def summary(section: dict[str, Any]) -> str:
    lines = [table(section), ""]
    for latency, figures in section["emulator_round_trip_ms"].items():
        lines.append(f"emulator round trips at {latency} added {round_trip_line(figures)}")
    alert = section.get("alert")
    if alert:
        lines.append(
            f"RotauditEventLagHigh: {alert['factor']}x {alert['p99_s']:g} s ({alert['basis']}) → "
            f"{alert['threshold_s']:g} s"
        )
    return "\n".join(lines)
