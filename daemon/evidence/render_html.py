"""The report as one self-contained HTML file: summary, three inline SVG charts, every secret and failure, manifest.

No script, no stylesheet or font from elsewhere; print CSS keeps it readable on paper. Every figure is also in a
`data-figure` attribute (fleet) or a `data-secret` row, which the browser test compares with the JSON output.
"""

from __future__ import annotations

from html import escape
from typing import Any

from daemon.evidence.render_svg import bar_chart

CHART_FAILURES_MAX = 40  # the time-to-recover chart shows the longest; the table lists them all

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:2rem auto;
max-width:60rem;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border:1px solid #d0d7de;padding:.25rem .4rem;text-align:right}
th{background:#f6f8fa}td.name,th.name{text-align:left}tr.flagged td.name{font-weight:600;color:#a40e26}
.summary td:first-child{text-align:left}.chart{max-width:100%;height:auto;display:block;margin:.5rem 0}
.chart .bar{fill:#0969da}.chart .axis{stroke:#57606a}.chart .tick{font-size:10px;fill:#57606a}
.chart .chart-title{font-size:12px;font-weight:600;fill:#1b1f24}.manifest code{word-break:break-all}
.muted{color:#57606a}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}table,svg{break-inside:avoid}
tr{break-inside:avoid}.chart .bar{fill:#333}a{color:inherit;text-decoration:none}}
@page{size:A4;margin:14mm}
"""


def _v(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "—"
    return str(value)


def _hours(seconds: float | None) -> str:
    return "unrecovered" if seconds is None else f"{seconds / 3600:.1f} h"


FLEET_ROWS = (
    ("secrets", "Secrets in the period"),
    ("secrets_ever_out_of_compliance", "Secrets ever out of compliance"),
    ("compliant_share", "Share of scan runs compliant"),
    ("scan_runs", "Scan runs (one per secret per run)"),
    ("rotations_started", "Rotations started"),
    ("rotations_succeeded", "Rotations succeeded"),
    ("rotations_failed", "Rotations failed"),
    ("failures_recovered", "Failures recovered"),
    ("failures_unrecovered", "Failures unrecovered at the end of the period"),
    ("recovery_mean_s", "Mean time to recover (s)"),
    ("recovery_max_s", "Longest time to recover (s)"),
    ("remediations", "Remediations"),
    ("remediation_outcomes", "Remediation outcomes"),
    ("max_over_age_days", "Longest time over the age limit (days)"),
)
SECRET_COLUMNS = (
    ("rotations_started", "started"),
    ("rotations_succeeded", "succeeded"),
    ("rotations_failed", "failed"),
    ("failures_unrecovered", "unrecovered"),
    ("remediations", "remediations"),
    ("max_over_age_days", "max over age (d)"),
    ("compliant_share", "compliant share"),
    ("age_days_at_end", "age at end (d)"),
)


def render_html(doc: dict[str, Any]) -> str:
    fleet, period, manifest = doc["fleet"], doc["period"], doc["manifest"]
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rotaudit evidence {escape(period['since'])} to {escape(period['until'])}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Secrets rotation evidence</h1>",
        f'<p class="muted">Period <strong data-figure="since">{escape(period["since"])}</strong> to '
        f'<strong data-figure="until">{escape(period["until"])}</strong> (end excluded), audit table '
        f"<code>{escape(doc['table'])}</code>, generated {escape(doc['generated_at'])} by rotaudit.</p>",
        '<h2>Fleet</h2><table class="summary"><tbody>',
    ]
    for key, label in FLEET_ROWS:
        out.append(f'<tr><td>{escape(label)}</td><td data-figure="{key}">{escape(_v(fleet[key]))}</td></tr>')
    out.append("</tbody></table>")
    out.append("<h2>Charts</h2>")
    ages = list(fleet["age_distribution_at_end"].items())
    out.append(
        bar_chart("chart-age", "Age at the end of the period", [(f"{k} d", float(v)) for k, v in ages], unit="secrets")
    )
    recovered = [f for f in doc["failures"] if f["recovery_s"] is not None]
    longest = sorted(recovered, key=lambda f: -f["recovery_s"])[:CHART_FAILURES_MAX]
    longest.sort(key=lambda f: f["failed_at"])
    ttr = [(f"{f['secret_name']} {f['failed_at'][5:10]}", f["recovery_s"] / 3600) for f in longest]
    out.append(bar_chart("chart-recovery", "Time to recover per failure", ttr, unit="hours"))
    weekly = [(w["week"], 100.0 * (w["compliant_share"] or 0.0)) for w in fleet["weekly_compliance"]]
    out.append(bar_chart("chart-weekly", "Scan runs compliant per week", weekly, unit="%", top=100.0))
    out.append(_secrets_table(doc["secrets"]))
    out.append(_failures_table(doc["failures"]))
    reads = doc["reads"]
    out += [
        '<h2>Manifest</h2><div class="manifest"><p>SHA-256 of the parameters and every audit item this report used '
        f'(canonical JSON, one line each): <code data-figure="manifest_sha256">{escape(manifest["sha256"])}</code></p>',
        f"<p>{manifest['items']} items from {manifest['secrets']} secrets; "
        f"format {escape(manifest['parameters']['format'])}. Read with {reads['queries']} key-condition queries "
        f"({reads['items']} items, {reads['items_per_secret']} per secret).</p>",
        '<p class="muted">Run <code>rotaudit evidence --since SINCE --until UNTIL --output json</code> again over the '
        "same period: the same digest means the same evidence.</p></div>",
        "</body></html>\n",
    ]
    return "".join(out)


def _secrets_table(secrets: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label in SECRET_COLUMNS)
    rows = []
    for s in secrets:
        cells = "".join(f'<td data-field="{key}">{escape(_v(s[key]))}</td>' for key, _ in SECRET_COLUMNS)
        flagged = ' class="flagged"' if s["ever_out_of_compliance"] else ""
        name = escape(s["secret_name"])
        rows.append(f'<tr{flagged} data-secret="{name}"><td class="name">{name}</td>{cells}</tr>')
    return (
        '<h2>Secrets</h2><p class="muted">Ever out of compliance first (in red).</p>'
        f'<table><thead><tr><th class="name">secret</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _failures_table(failures: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr data-failure="{escape(f["rotation_id"])}"><td class="name">{escape(f["secret_name"])}</td>'
        f"<td>{escape(f['failed_at'])}</td><td>{escape(f['failed_step'] or '—')}</td>"
        f"<td>{escape(f['recovered_at'] or '—')}</td>"
        f'<td data-field="recovery_s">{escape(_hours(f["recovery_s"]))}</td></tr>'
        for f in failures
    )
    return (
        '<h2>Failures and recovery</h2><table><thead><tr><th class="name">secret</th><th>failed at</th><th>step</th>'
        f"<th>next success</th><th>time to recover</th></tr></thead><tbody>{rows}</tbody></table>"
    )
