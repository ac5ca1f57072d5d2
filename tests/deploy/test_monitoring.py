"""Monitoring artefacts: promtool checks and tests; every metric the rules and dashboard read, the daemon exports.

The exported names come from a real daemon (every feature on) on the emulator, read over HTTP from /metrics.
promtool is Debian's (2.42, `make monitoring-tools`): it predates `aws_sd_configs`, so `check config` runs on a
copy whose discovery block is swapped for a static target, and the ECS block is checked against the documented
fields here, with the relabelling evaluated on documented ECS meta labels.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon.aws import Aws
from daemon.cli import _parser
from daemon.config import Config
from daemon.devtools.emulator import Emulator
from daemon.provision import provision
from daemon.timer import RateSchedule, parse_schedule
from tests.support import REGION, ROOT, daemon_env, rotaudit_cmd, wait_until

PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "rotaudit.json"
RUNBOOK = PROM / "runbook.md"
RUNBOOK_URL = "https://github.com/rotaudit/rotaudit/blob/main/deploy/prometheus/runbook.md"
DEFAULT_PROMTOOL = "/var/cache/rotaudit/monitoring/bin/promtool"
SYNTHETIC = frozenset({"up"})  # series Prometheus itself writes for every target
KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "inf", "nan"})
KEYWORDS |= {"group_left", "group_right"}
# Sample names per family type, as Prometheus stores them (`_created` only where the daemon really exposes it).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
# The `aws_sd_configs` fields Prometheus documents (configuration.md, `<aws_sd_config>`).
AWS_SD_FIELDS = {"role", "region", "endpoint", "access_key", "secret_key", "profile", "role_arn", "refresh_interval"}
AWS_SD_FIELDS |= {"port", "filters", "clusters"}


def _promtool() -> str:
    found = os.environ.get("PROMTOOL") or DEFAULT_PROMTOOL
    if not (Path(found).is_file() and os.access(found, os.X_OK)):
        found = shutil.which("promtool") or ""
    if not found:
        pytest.fail(f"promtool not found (looked at $PROMTOOL, {DEFAULT_PROMTOOL}, PATH): run `make monitoring-tools`")
    return found


def _run_promtool(*args: str, cwd: Path = PROM) -> str:
    result = subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(PROM / "rules.yml")["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def _scrape_job() -> dict[str, Any]:
    jobs = _yaml(PROM / "prometheus.yml")["scrape_configs"]
    assert len(jobs) == 1, "one scrape job, for the daemon"
    return dict(jobs[0])


# --- metric names --------------------------------------------------------------------------------------------------
def exported_names(exposition: str) -> set[str]:
    """Every series name a Prometheus scraping this exposition can hold (counters as `_total`, histogram parts)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def referenced_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression (Grafana variables allowed) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    found = re.finditer(r"(?<![\w.:$])([A-Za-z_:][\w:]*)\s*(\(?)", text)
    return {m.group(1) for m in found if not m.group(2) and m.group(1).lower() not in KEYWORDS}


def unknown_metrics(exprs: Iterable[str], exported: set[str], recorded: set[str]) -> list[str]:
    """Names that are neither exported by the daemon, written by Prometheus, nor recorded by rules.yml."""
    known = exported | recorded | SYNTHETIC
    return sorted({name for expr in exprs for name in referenced_metrics(expr)} - known)


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


@pytest.fixture(scope="module")
def exposition(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """/metrics of a real daemon on the emulator with every feature on: DLQ gauges, remediation, scan, sync."""

    async def resources() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=emulator.endpoint_url) as aws:
            return await provision(aws, f"m{uuid.uuid4().hex[:10]}")

    stack = asyncio.run(resources())
    pair = {"name": "orders-db-url", "source": "rds!db-monitoring", "target": "orders/DATABASE_URL"}
    env = daemon_env(
        emulator.endpoint_url,
        stack,
        ROTAUDIT_DLQ_URL=stack["dlq_url"],
        ROTAUDIT_SNS_TOPIC_ARN=stack["topic_arn"],
        ROTAUDIT_REMEDIATION_MODE="apply",
        ROTAUDIT_SCAN_ENABLED="true",
        ROTAUDIT_SCAN_AGE_GAUGE="true",
        ROTAUDIT_SYNC_PAIRS=json.dumps([pair]),
        ROTAUDIT_LOG_LEVEL="warning",
    )
    base = f"http://127.0.0.1:{env['ROTAUDIT_HTTP_PORT']}"
    log = tmp_path_factory.mktemp("daemon") / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(rotaudit_cmd("run"), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310 (our own localhost)
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(ready, timeout_s=60, interval_s=0.2)
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310 (our own localhost)
            yield response.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()


# --- promtool ----------------------------------------------------------------------------------------------------
def test_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts rules.yml."""
    assert "SUCCESS" in _run_promtool("check", "rules", "rules.yml")


def test_rules_unit_tests_pass() -> None:
    """`promtool test rules` passes every case in rules_test.yml."""
    assert "SUCCESS" in _run_promtool("test", "rules", "rules_test.yml")


def test_scrape_config_passes_promtool_check(tmp_path: Path) -> None:
    """`promtool check config` accepts the scrape config (discovery swapped for a static target) and its rules."""
    config = _yaml(PROM / "prometheus.yml")
    job = config["scrape_configs"][0]
    job.pop("aws_sd_configs")
    job["static_configs"] = [{"targets": ["127.0.0.1:9108"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
    output = _run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS: 1 rule files found" in output


def test_scrape_config_discovers_ecs_tasks_on_the_daemon_port() -> None:
    """The job discovers ECS tasks (role ecs, documented fields only) on the daemon's default HTTP port."""
    job = _scrape_job()
    assert job["job_name"] == "rotaudit", "rules.yml selects job=rotaudit"
    [sd] = job["aws_sd_configs"]
    assert set(sd) <= AWS_SD_FIELDS
    assert sd["role"] == "ecs"
    assert sd["port"] == Config.__dataclass_fields__["http_port"].default == 9108
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", sd["region"]), "a region, or Prometheus asks IMDS for one"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert _yaml(PROM / "prometheus.yml")["rule_files"] == ["rules.yml"]


def _relabel(meta: dict[str, str], rules: list[dict[str, Any]], job: str) -> dict[str, str] | None:
    """Prometheus relabelling (keep, drop, replace with its defaults) and the target labels it leaves."""
    labels = {"job": job, **meta}
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action in ("keep", "drop"):
            if (match is None) == (action == "keep"):
                return None
        elif action == "replace" and match is not None:
            result = match.expand(re.sub(r"\$\{?(\d+)\}?", r"\\\1", rule.get("replacement", "$1")))
            if result:
                labels[rule["target_label"]] = result
            else:
                labels.pop(rule["target_label"], None)
        elif action != "replace":
            raise AssertionError(f"relabel action {action} is not modelled here")
    labels.setdefault("instance", labels["__address__"])
    return {key: value for key, value in labels.items() if not key.startswith("__")}


def _ecs_target(**overrides: str) -> dict[str, str]:
    """A target as the ECS role describes one (documented `__meta_ecs_*` labels)."""
    account = "arn:aws:ecs:us-east-1:123456789012"
    return {
        "__address__": "10.0.1.100:9108",
        "__meta_ecs_cluster": "rotaudit",
        "__meta_ecs_service": "rotaudit",
        "__meta_ecs_last_status": "RUNNING",
        "__meta_ecs_desired_status": "RUNNING",
        "__meta_ecs_task_arn": f"{account}:task/rotaudit/0123456789abcdef",
        "__meta_ecs_task_definition": f"{account}:task-definition/rotaudit:7",
        "__meta_ecs_availability_zone": "us-east-1a",
    } | overrides


@pytest.mark.parametrize(
    ("overrides", "kept"),
    [
        ({}, True),
        ({"__meta_ecs_service": "orders-api"}, False),
        ({"__meta_ecs_cluster": "staging"}, False),
        ({"__meta_ecs_last_status": "STOPPED"}, False),
        ({"__meta_ecs_last_status": "PENDING"}, False),
    ],
)
def test_relabelling_keeps_only_running_rotaudit_tasks(overrides: dict[str, str], kept: bool) -> None:
    """Only the rotaudit service's running tasks are scraped."""
    job = _scrape_job()
    assert (_relabel(_ecs_target(**overrides), job["relabel_configs"], job["job_name"]) is not None) is kept


def test_relabelling_gives_the_labels_rules_aggregate_by() -> None:
    """A kept task carries job, ecs_cluster, ecs_service, and the task id as instance."""
    job = _scrape_job()
    assert _relabel(_ecs_target(), job["relabel_configs"], job["job_name"]) == {
        "job": "rotaudit",
        "ecs_cluster": "rotaudit",
        "ecs_service": "rotaudit",
        "instance": "0123456789abcdef",
        "task_definition": "rotaudit:7",
        "availability_zone": "us-east-1a",
    }


# --- metric names against the daemon -------------------------------------------------------------------------------
def test_rules_read_only_exported_metrics(exposition: str) -> None:
    """Every metric rules.yml reads is exported by the daemon, recorded by a rule, or `up`."""
    exprs = [rule["expr"] for rule in _rules()]
    assert unknown_metrics(exprs, exported_names(exposition), _recorded()) == []


def test_dashboard_reads_only_exported_metrics(exposition: str) -> None:
    """Every metric the dashboard queries is exported by the daemon (or recorded by rules.yml)."""
    assert unknown_metrics(_dashboard_exprs(), exported_names(exposition), _recorded()) == []


def test_name_check_catches_a_misspelt_metric_in_a_copy_of_the_rules(exposition: str) -> None:
    """A copy of rules.yml with one metric misspelt fails the check, naming that metric."""
    text = (PROM / "rules.yml").read_text().replace("rotaudit_dlq_messages)", "rotaudit_dlq_message)")
    exprs = [rule["expr"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    assert unknown_metrics(exprs, exported_names(exposition), _recorded()) == ["rotaudit_dlq_message"]


@pytest.mark.parametrize(
    ("expr", "unknown"),
    [
        ('sum(rate(rotaudit_event_lag_seconds_bucket{le="1"}[5m]))', []),
        ("rotaudit_event_lag_seconds_sum / rotaudit_event_lag_seconds_count", []),
        ("rate(rotaudit_events_processed_total[5m])", []),
        ("rate(rotaudit_events_processed[5m])", ["rotaudit_events_processed"]),
        ("rotaudit_events_in_flight_total", ["rotaudit_events_in_flight_total"]),
        ("rotaudit_event_lag_seconds", ["rotaudit_event_lag_seconds"]),
        ("rotaudit_events_processed_created", ["rotaudit_events_processed_created"]),
        ('max by (job) (rotaudit_build_info{version!=""}) offset 1h', []),
        ("rotaudit:scan_window_seconds * on (job) group_left () rotaudit_ready", []),
        ("time() - rotaudit_scan_last_success_timestmp_seconds", ["rotaudit_scan_last_success_timestmp_seconds"]),
    ],
)
def test_name_check_knows_counter_and_histogram_suffixes(exposition: str, expr: str, unknown: list[str]) -> None:
    """Counters are `_total`, histograms `_bucket/_sum/_count`, gauges bare; `_created` is not exported."""
    assert unknown_metrics([expr], exported_names(exposition), _recorded()) == unknown


def test_target_labels_do_not_clash_with_daemon_labels(exposition: str) -> None:
    """No label the scrape config adds is one the daemon's metrics carry (Prometheus would rename the daemon's)."""
    daemon_labels = {
        label for family in text_string_to_metric_families(exposition) for s in family.samples for label in s.labels
    }
    daemon_labels |= set(re.findall(r"(\w+)=\"", exposition))
    target_labels = {rule["target_label"] for rule in _scrape_job()["relabel_configs"] if "target_label" in rule}
    assert "service" in daemon_labels, "rotaudit_aws_calls_total{service=...}: the clash this guards against"
    assert target_labels & daemon_labels == set()


def test_series_the_rules_count_exist_before_the_first_event(exposition: str) -> None:
    """Each series the rules take increase()/rate() of is exported at 0 from start-up, so a first event counts."""
    samples = {
        (s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(exposition) for s in f.samples
    }
    counted = re.compile(r"(?:increase|rate)\(\s*([\w:]+)\s*(?:\{([^}]*)\})?\s*\[")
    selectors = counted.findall(" ".join(rule["expr"] for rule in _rules()))
    assert selectors
    missing = []
    for name, matchers in selectors:
        wanted = set(re.findall(r'(\w+)\s*=\s*"([^"]*)"', matchers))
        if not any(n == name and wanted <= set(labels) for n, labels in samples):
            missing.append(f"{name}{{{matchers}}}")
    assert missing == []


# --- the rules themselves ------------------------------------------------------------------------------------------
def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """Each alert in rules.yml has a promtool case where it fires and one where it does not."""
    cases = [case for test in _yaml(PROM / "rules_test.yml")["tests"] for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert set(_alerts()) - firing == set()
    assert set(_alerts()) - quiet == set()
    assert {case["alertname"] for case in cases} <= set(_alerts()), "a test names an alert that does not exist"


def test_every_alert_has_a_delay_severity_and_annotations() -> None:
    """Each alert waits (`for`), has a severity, and says what, why, and where its runbook is."""
    for name, alert in _alerts().items():
        assert alert.get("for"), name
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name


def _runbook_sections() -> dict[str, str]:
    """runbook.md's `## ` headings (as GitHub anchors them: lower case) -> their text."""
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {heading.strip().lower(): text for heading, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_alert_links_its_own_runbook_section() -> None:
    """Each runbook_url is runbook.md on main at the alert's own heading, which says what it means and what to do;
    the runbook has no section for an alert that does not exist."""
    sections = _runbook_sections()
    for name, alert in _alerts().items():
        assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", name
        assert "**What it means.**" in sections[name.lower()], name
        assert "**What to do.**" in sections[name.lower()], name
    assert set(sections) == {name.lower() for name in _alerts()}


def test_runbook_commands_are_real_cli_commands() -> None:
    """Every `rotaudit ...` command in the runbook parses with the real CLI."""
    commands = re.findall(r"`rotaudit ([^`]+)`", RUNBOOK.read_text())
    assert len(commands) >= 5
    for command in commands:
        try:
            _parser().parse_args(command.split())
        except SystemExit as exc:
            raise AssertionError(f"`rotaudit {command}` does not parse") from exc


def test_scan_window_constant_matches_the_default_schedule() -> None:
    """rotaudit:scan_window_seconds is the window of the default ROTAUDIT_SCAN_SCHEDULE."""
    [rule] = [rule for rule in _rules() if rule.get("record") == "rotaudit:scan_window_seconds"]
    schedule = parse_schedule(Config.__dataclass_fields__["scan_schedule"].default)
    assert isinstance(schedule, RateSchedule)
    assert rule["expr"].rstrip().endswith(f"* 0 + {schedule.interval_s}")


# --- the dashboard -------------------------------------------------------------------------------------------------
def test_dashboard_queries_go_through_the_datasource_variable() -> None:
    """A datasource variable picks the Prometheus; every panel and query uses it."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["job"]["current"]["value"] == _scrape_job()["job_name"], "the job name is a variable"
    queries = [v["query"]["query"] for v in variables.values() if v["type"] == "query"] + _dashboard_exprs()
    assert [query for query in queries if re.search(r"\bjob\s*=\s*\"", query)] == [], "a hard-coded job"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'ecs_service=~"$ecs_service"' in target["expr"], panel["title"]
            assert 'job=~"$job"' in target["expr"], panel["title"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_has_the_operator_panels() -> None:
    """Events, rejections, remediations, flagged secrets, scan freshness, lag, DLQ, in-flight, AWS errors, open
    failures (and those needing a person, the oldest one's age) and time to recover."""
    exprs = " ".join(_dashboard_exprs())
    for metric in (
        "rotaudit_events_processed_total",
        "rotaudit_messages_rejected_total",
        "rotaudit_remediations_total",
        "rotaudit_secrets_needing_rotation",
        "rotaudit_scan_last_success_timestamp_seconds",
        "rotaudit_event_lag_seconds_bucket",
        "rotaudit_dlq_messages",
        "rotaudit_events_in_flight",
        "rotaudit_aws_errors_total",
        "rotaudit_rotation_failures_open",
        "rotaudit_rotation_failures_needing_human",
        "rotaudit_rotation_failure_oldest_open_timestamp_seconds",
        "rotaudit_rotation_recovery_seconds_bucket",
    ):
        assert metric in exprs, metric


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each dashboard query, with Grafana's variables filled in, parses (promtool check rules)."""
    fill = {"$__rate_interval": "2m", "$job": "rotaudit", "$ecs_cluster": ".*", "$ecs_service": ".*"}
    rules = []
    for index, expr in enumerate(_dashboard_exprs()):
        for variable, value in fill.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query{index}", "expr": expr})
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _run_promtool("check", "rules", "queries.yml", cwd=tmp_path)
