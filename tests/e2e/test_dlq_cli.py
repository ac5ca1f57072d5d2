"""DLQ inspection, replay and export through the CLI against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from daemon import cli
from daemon.audit import AuditStore, PendingWrite
from daemon.aws import Aws
from daemon.devtools.emulator import Emulator
from daemon.dlq.replay import Replayer
from daemon.events import RotationEvent, parse_message
from daemon.provision import provision
from tests.support import REGION, ROOT, daemon_env, rotaudit_cmd, wait_until
from tests.support.daemon_thread import DaemonThread
from tests.support.dlq import (
    audit_items,
    daemon_config,
    event_body,
    queue_bodies,
    queue_depth,
    queue_messages,
    rejected_attributes,
    seed,
)

Cli = Callable[..., tuple[int, str, str]]


def _runner(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str, **env: str) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            patch.setenv("ROTAUDIT_QUEUE_URL", stack["queue_url"])
            patch.setenv("ROTAUDIT_AUDIT_TABLE", stack["table_name"])
            for key, value in env.items():
                if value:
                    patch.setenv(key, value)
                else:
                    patch.delenv(key, raising=False)
            capsys.readouterr()
            logging = structlog.get_config()
            try:
                code = cli.main(["dlq", *args])
            finally:  # the CLI points structlog at this test's captured stderr: leave it as it was
                structlog.configure(**logging)
            out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run_cli(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`rotaudit dlq ...` in this process against the stack: (exit code, stdout, stderr)."""
    return _runner(stack, monkeypatch, capsys)


@pytest.fixture(scope="module")
def untouched_stack(emulator: Emulator) -> dict[str, str]:
    """One stack, with one message in its DLQ, shared by tests that each assert they left it as it was."""

    async def go() -> dict[str, str]:
        async with Aws(REGION, endpoint_url=emulator.endpoint_url) as aws:
            return await provision(aws, f"t{uuid.uuid4().hex[:10]}")

    stack = asyncio.run(go())
    seed(emulator.endpoint_url, stack["dlq_url"], [(event_body("RotationFailed"), {})])
    return stack


# -- inspect and export -----------------------------------------------------------------------------------


def test_inspect_shows_each_message_and_leaves_the_dlq_unchanged(
    endpoint: str, stack: dict[str, str], run_cli: Cli
) -> None:
    """Messages the daemon rejected and one SQS moved are listed with their reasons; all stay visible, unchanged."""
    bodies = [
        event_body("RotationFailed", "app/a", step="setSecret"),
        event_body("RotationSucceeded", "app/b"),
        "not json",
    ]
    with DaemonThread(daemon_config(endpoint, stack, ROTAUDIT_ALLOWED_ACCOUNTS="999999999999")) as running:
        seed(endpoint, stack["queue_url"], [(body, {}) for body in bodies])
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= 3)
    moved = event_body("RotationStarted", "app/c")
    seed(endpoint, stack["dlq_url"], [(moved, {})])
    before = queue_bodies(endpoint, stack["dlq_url"])

    code, out, _ = run_cli("inspect", "--output", "json")

    assert code == 0
    printed = json.loads(out)
    assert (printed["visible"], printed["in_flight"]) == (4, 0)
    rows = {row["reason"] + ":" + str(row["event_name"]): row for row in printed["messages"]}
    assert set(rows) == {
        "account_not_allowed:RotationFailed",
        "account_not_allowed:RotationSucceeded",
        "not_json:None",
        "max_receives:RotationStarted",
    }
    failed = parse_message(bodies[0])
    assert isinstance(failed, RotationEvent)
    row = rows["account_not_allowed:RotationFailed"]
    assert (row["secret_name"], row["rotation_id"], row["receive_count"]) == ("app/a", failed.rotation_id, 1)
    assert all("body" not in row for row in rows.values())
    assert queue_depth(endpoint, stack["dlq_url"]) == (4, 0)
    assert queue_bodies(endpoint, stack["dlq_url"]) == before


def test_inspect_table_has_one_line_per_message_up_to_the_limit(
    endpoint: str, stack: dict[str, str], run_cli: Cli
) -> None:
    """The table view shows a header and --limit rows; the rest stay untouched too."""
    seed(
        endpoint,
        stack["dlq_url"],
        [(event_body("RotationFailed", f"lim/{i}"), rejected_attributes("bad_field")) for i in range(5)],
    )
    code, out, _ = run_cli("inspect", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["EVENT", "SECRET", "ROTATION", "REASON", "RECEIVES", "AGE"]
    assert len(lines) == 4
    assert all("bad_field" in line for line in lines[1:])
    assert queue_depth(endpoint, stack["dlq_url"]) == (5, 0)


def test_export_copies_every_message_and_leaves_them(
    endpoint: str, stack: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    """Export writes one JSON line per message with body and attributes, mode 0600, and moves nothing."""
    bodies = [event_body("RotationFailed", f"exp/{i}") for i in range(12)]
    seed(endpoint, stack["dlq_url"], [(body, rejected_attributes("account_not_allowed")) for body in bodies])
    out = tmp_path / "dlq.jsonl"
    code, stdout, _ = run_cli("export", "--out", str(out), "--output", "json")
    assert code == 0
    assert json.loads(stdout)["exported"] == 12
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["body"] for r in records) == sorted(bodies)
    assert {r["message_attributes"]["rotaudit.reject_reason"]["StringValue"] for r in records} == {
        "account_not_allowed"
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert queue_depth(endpoint, stack["dlq_url"]) == (12, 0)


@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_export_never_writes_through_a_file_planted_at_its_temporary_name(
    endpoint: str, stack: dict[str, str], run_cli: Cli, tmp_path: Path, planted: str
) -> None:
    """A world-writable file or a symlink waiting at the old temporary name is neither reused nor written through."""
    seed(endpoint, stack["dlq_url"], [(event_body("RotationFailed", "exp/planted"), {})])
    out = tmp_path / "dlq.jsonl"
    old_name = tmp_path / f".{out.name}.{os.getpid()}.partial"  # what export used to open, O_CREAT without O_EXCL
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("untouched")
    elsewhere.chmod(0o666)
    if planted == "file":
        old_name.write_text("")
        old_name.chmod(0o666)
    else:
        old_name.symlink_to(elsewhere)
    code, _, _ = run_cli("export", "--out", str(out))
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not out.is_symlink()
    assert elsewhere.read_text() == "untouched"
    assert old_name.is_symlink() if planted == "symlink" else old_name.read_text() == ""


# -- replay -----------------------------------------------------------------------------------------------


def test_dry_run_moves_nothing_and_reports_what_it_would(endpoint: str, stack: dict[str, str], run_cli: Cli) -> None:
    """A dry run lists exactly the matching messages, sends and deletes nothing, and writes no audit item."""
    seeded = [
        (event_body("RotationFailed", name), rejected_attributes("account_not_allowed"))
        for name in ("dry/a", "dry/a", "dry/b")
    ]
    seed(endpoint, stack["dlq_url"], seeded)
    code, out, _ = run_cli("replay", "--dry-run", "--secret", "dry/a", "--output", "json")
    assert code == 0
    report = json.loads(out)
    assert (report["matched"], report["replayed"], report["skipped"], report["dry_run"]) == (2, 0, 1, True)
    assert [row["secret_name"] for row in report["selected"]] == ["dry/a", "dry/a"]
    assert queue_depth(endpoint, stack["dlq_url"]) == (3, 0)
    assert queue_depth(endpoint, stack["queue_url"]) == (0, 0)
    assert audit_items(endpoint, stack["table_name"], "dlq_replay") == []


def test_replay_moves_exactly_the_selected_messages_and_audits_the_replay(
    endpoint: str, stack: dict[str, str], run_cli: Cli
) -> None:
    """Filters combine; only matches move, stripped of reject attributes; the replay is an audit item with counts."""
    chosen = [event_body("RotationFailed", "sel/app-1"), event_body("RotationSucceeded", "sel/app-2")]
    others = [
        (event_body("RotationFailed", "sel/app-3"), rejected_attributes("bad_field")),  # wrong reason
        (event_body("RotationFailed", "other/x"), rejected_attributes("account_not_allowed")),  # wrong secret
        (event_body("RotationFailed", "sel/app-4"), {}),  # moved by SQS: max_receives
    ]
    seed(endpoint, stack["dlq_url"], [(body, rejected_attributes("account_not_allowed")) for body in chosen] + others)

    filters = ["--secret", "sel/*", "--reason", "account_not_allowed", "--event", "RotationFailed"]
    code, out, _ = run_cli("replay", *filters, "--event", "RotationSucceeded", "--since", "1h", "--output", "json")

    assert code == 0
    report = json.loads(out)
    assert {k: report[k] for k in ("matched", "replayed", "skipped", "failed", "undeleted")} == {
        "matched": 2,
        "replayed": 2,
        "skipped": 3,
        "failed": 0,
        "undeleted": 0,
    }
    sent = queue_messages(endpoint, stack["queue_url"])
    assert sorted(m["Body"] for m in sent) == sorted(chosen)
    for message in sent:
        names = set(message.get("MessageAttributes", {}))
        assert names == {"rotaudit.replay_id"}
        assert message["MessageAttributes"]["rotaudit.replay_id"]["StringValue"] == report["replay_id"]
    assert queue_bodies(endpoint, stack["dlq_url"]) == sorted(body for body, _ in others)
    (item,) = audit_items(endpoint, stack["table_name"], "dlq_replay")
    assert item["pk"]["S"].startswith("replay#")
    assert item["replay_id"]["S"] == report["replay_id"]
    assert item["status"]["S"] == "finished"
    assert (item["matched"]["N"], item["replayed"]["N"], item["skipped"]["N"], item["failed"]["N"]) == (
        "2",
        "2",
        "3",
        "0",
    )
    assert item["filters"]["M"]["secret"]["L"] == [{"S": "sel/*"}]
    assert item["who"]["S"]
    assert item["caller_arn"]["S"].startswith("arn:aws:")
    assert "secret_name" not in item  # replay items stay out of the by_name index


def test_max_caps_the_replay(endpoint: str, stack: dict[str, str], run_cli: Cli) -> None:
    """--max 3 moves three messages and leaves the rest visible in the DLQ."""
    seed(endpoint, stack["dlq_url"], [(event_body("RotationFailed", f"max/{i}"), {}) for i in range(7)])
    code, out, _ = run_cli("replay", "--max", "3")
    assert code == 0
    assert "matched 3, replayed 3" in out
    assert queue_depth(endpoint, stack["queue_url"]) == (3, 0)
    assert queue_depth(endpoint, stack["dlq_url"]) == (4, 0)


async def test_rate_holds(endpoint: str, stack: dict[str, str]) -> None:
    """At --rate 4 no moment has more than 4 per second sent, plus one burst of at most 4 (time is a fake clock)."""
    seed(endpoint, stack["dlq_url"], [(event_body("RotationFailed", f"rate/{i}"), {}) for i in range(12)])
    clock = FakeClock()
    seen: list[tuple[float, int]] = []
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        replayer = Replayer(
            aws,
            dlq_url=stack["dlq_url"],
            queue_url=stack["queue_url"],
            table=stack["table_name"],
            rate=4,
            clock=clock.now,
            sleep=clock.sleep,
            on_progress=lambda counts: seen.append((clock.t, counts.replayed)),
        )
        report = await replayer.run()
    assert report.counts.replayed == 12
    assert all(replayed <= 4 * t + 4 for t, replayed in seen)
    assert clock.t >= (12 - 4) / 4


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.mark.slow
def test_killed_replay_loses_nothing_and_every_event_is_audited_once(
    endpoint: str, stack: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    """Killed mid-replay: each message is in the DLQ or the queue; then each event (half audited before) is one item."""
    bodies = [event_body("RotationFailed", f"kill/{i}") for i in range(12)]
    events = [parse_message(body) for body in bodies]
    assert all(isinstance(event, RotationEvent) for event in events)
    asyncio.run(_audit(endpoint, stack["table_name"], [e for e in events[:6] if isinstance(e, RotationEvent)]))
    seed(endpoint, stack["dlq_url"], [(body, rejected_attributes("account_not_allowed")) for body in bodies])

    log = (tmp_path / "replay.log").open("w")
    env = daemon_env(endpoint, stack)
    args = rotaudit_cmd("dlq", "replay", "--rate", "2", "--hold", "3")
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: queue_depth(endpoint, stack["queue_url"])[0] >= 4, timeout_s=30)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
    wait_until(lambda: queue_depth(endpoint, stack["dlq_url"])[1] == 0, timeout_s=15)  # its hold ran out
    in_dlq, in_queue = queue_bodies(endpoint, stack["dlq_url"]), queue_bodies(endpoint, stack["queue_url"])
    assert set(in_dlq) | set(in_queue) == set(bodies)
    assert len(in_queue) >= 4
    assert len(in_dlq) < 12

    code, _, _ = run_cli("replay")
    assert code == 0
    queued = queue_depth(endpoint, stack["queue_url"])[0]
    assert queued >= 12
    with DaemonThread(daemon_config(endpoint, stack)) as running:
        wait_until(lambda: running.counter("rotaudit_messages_deleted_total") >= queued, timeout_s=30)
        duplicates = running.counter(
            "rotaudit_events_processed_total", event_name="RotationFailed", outcome="duplicate"
        )
    assert duplicates >= 6
    items = audit_items(endpoint, stack["table_name"], "event")
    assert sorted(i["event_id"]["S"] for i in items) == sorted(
        e.event_id for e in events if isinstance(e, RotationEvent)
    )
    statuses = sorted(i["status"]["S"] for i in audit_items(endpoint, stack["table_name"], "dlq_replay"))
    assert statuses == ["finished", "running"]  # the killed one never finished: visible as such


async def _audit(endpoint: str, table: str, events: list[RotationEvent]) -> None:
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        await AuditStore(aws, table).record_many([PendingWrite(event) for event in events])


def test_move_task_falls_back_to_one_by_one_where_sqs_lacks_it(
    endpoint: str, stack: dict[str, str], run_cli: Cli
) -> None:
    """Stand-in for AWS: the emulator lacks StartMessageMoveTask (AWS-FACTS §7), so --move-task replays one by one."""
    seed(endpoint, stack["dlq_url"], [(event_body("RotationFailed", f"mv/{i}"), {}) for i in range(3)])
    code, out, err = run_cli("replay", "--move-task")
    assert code == 0
    assert "StartMessageMoveTask" in err
    assert "replayed 3" in out
    assert queue_depth(endpoint, stack["queue_url"]) == (3, 0)


def test_quiet_inspect_prints_the_table_without_the_count_line(
    endpoint: str,
    untouched_stack: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """-q (before or after the command) keeps stdout's table and drops the count note on stderr."""
    run_cli = _runner(untouched_stack, monkeypatch, capsys)

    plain = run_cli("inspect")
    quiet = run_cli("inspect", "-q")

    assert (plain[0], quiet[0]) == (0, 0)
    assert [line.split()[:3] for line in plain[1].splitlines()] == [line.split()[:3] for line in quiet[1].splitlines()]
    assert "1 shown" in plain[2]
    assert quiet[2] == ""


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "names"),
    [
        (("inspect",), {"ROTAUDIT_QUEUE_URL": "{dlq_url}"}, 3, "ROTAUDIT_DLQ_URL"),  # a queue without a DLQ
        (("inspect",), {"ROTAUDIT_QUEUE_URL": "{queue_url}-missing"}, 3, "ROTAUDIT_QUEUE_URL"),
        (("export", "--out", "x.jsonl"), {"ROTAUDIT_DLQ_URL": "{dlq_url}-missing"}, 3, "ROTAUDIT_DLQ_URL"),
        (("replay",), {"ROTAUDIT_QUEUE_URL": ""}, 78, "ROTAUDIT_QUEUE_URL"),
        (("replay",), {"ROTAUDIT_AUDIT_TABLE": ""}, 78, "ROTAUDIT_AUDIT_TABLE"),
        (("replay",), {"ROTAUDIT_AUDIT_TABLE": "no-such-table"}, 3, "ROTAUDIT_AUDIT_TABLE"),
        (("replay", "--table", "no-such-table"), {"ROTAUDIT_AUDIT_TABLE": ""}, 3, "no-such-table"),
    ],
)
def test_setup_errors_name_what_to_fix(
    endpoint: str,
    untouched_stack: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    env: dict[str, str],
    code: int,
    names: str,
) -> None:
    """No DLQ, a missing queue or table, a missing setting: an exit code and the setting to fix; nothing moves."""
    run_cli = _runner(untouched_stack, monkeypatch, capsys)
    got, _, err = run_cli(*args, **{key: value.format(**untouched_stack) for key, value in env.items()})
    assert got == code
    assert names in err
    assert queue_depth(endpoint, untouched_stack["dlq_url"]) == (1, 0)
