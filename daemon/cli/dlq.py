"""`rotaudit dlq inspect|replay|export`: look at the dead-letter queue, send messages back, archive them."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from daemon.aws import Aws
from daemon.cli.common import (
    add_command,
    add_json_alias,
    load_settings,
    open_aws,
    positive_float,
    positive_int,
    say,
)
from daemon.cli.output import aligned, print_json
from daemon.config import Config, dumb_terminal
from daemon.dlq.reader import DEFAULT_HOLD_S, DlqMessage, read_all, walk
from daemon.dlq.replay import (
    Replayer,
    ReplayFilter,
    ReplayReport,
    identify_operator,
    record_move_task,
    start_move_task,
)
from daemon.errors import EXIT_FAILURE, EXIT_OK, EXIT_STARTUP, EXIT_USAGE, AwsError
from daemon.queues import queue_depth, resolve_dlq_url
from daemon.timer import utc_now

SERVICES = ("sqs", "dynamodb", "sts")
_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(commands: Any) -> None:
    """Add `dlq inspect|replay|export`; each sets `handler`: an async function of the args returning an exit code."""
    dlq = add_command(commands, "dlq", None, help="inspect, replay or export the dead-letter queue")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    gone = {EXIT_STARTUP: "the queue, its DLQ or the audit table is missing: the message names the setting"}

    inspect = add_command(
        actions,
        "inspect",
        _inspect,
        help="one line per message; every message stays where it is",
        description="List the DLQ's messages (event, secret, rotation id, reject reason, receives, age); each is "
        "hidden for --hold seconds while read, then visible again, unchanged.\n--output json: one object, "
        "{messages: [{message_id, event_name, secret_name, rotation_id, reason, receive_count, sent_at, ...}, ...], "
        "visible, in_flight}; never a body.",
        examples=("rotaudit dlq inspect --limit 20", "rotaudit dlq inspect --output json | jq '.messages[].reason'"),
        exit_codes=gone,
    )
    inspect.add_argument("--limit", type=positive_int, default=100, help="at most N messages (default 100)")
    add_json_alias(inspect)
    _common(inspect)

    replay = add_command(
        actions,
        "replay",
        _replay,
        help="send matching messages back to the source queue (send, then delete)",
        description="Send the DLQ's matching messages back to ROTAUDIT_QUEUE_URL, each sent before it is deleted, "
        "and record the replay in the audit table. A progress bar shows on a terminal (not with -q).\n"
        "--output json: one object, {replay_id, method: replay|move_task, dry_run, status, matched, replayed, "
        "skipped, failed, undeleted, selected: [message, ...] (a dry run), task_handle (move_task)}.",
        examples=(
            "rotaudit dlq replay --dry-run --reason account_not_allowed",
            "rotaudit dlq replay --event RotationFailed --since 6h --rate 5",
            "rotaudit dlq replay --move-task --table rotaudit-audit",
        ),
        exit_codes={**gone, EXIT_FAILURE: "a message failed to replay, or was sent but is still in the DLQ"},
    )
    replay.add_argument("--dry-run", action="store_true", help="report what would be replayed; move nothing")
    replay.add_argument("--max", type=positive_int, help="replay at most N messages")
    replay.add_argument("--rate", type=positive_float, help="at most R messages per second")
    replay.add_argument("--secret", action="append", default=[], help="secret name or ARN, wildcards allowed (repeat)")
    replay.add_argument("--event", action="append", default=[], help="event name, e.g. RotationFailed (repeat)")
    replay.add_argument(
        "--reason", action="append", default=[], help="reject reason, e.g. account_not_allowed, max_receives (repeat)"
    )
    replay.add_argument("--since", type=_since, help="sent at or after T: ISO-8601 time, or an age like 30m, 6h, 2d")
    replay.add_argument(
        "--move-task",
        action="store_true",
        help="hand an unfiltered replay to SQS StartMessageMoveTask (fast on AWS); falls back where it is missing",
    )
    replay.add_argument("--table", help="audit table the replay is recorded in (default: ROTAUDIT_AUDIT_TABLE)")
    add_json_alias(replay)
    _common(replay)

    export = add_command(
        actions,
        "export",
        _export,
        help="copy every message to a JSON Lines file, leaving them in place",
        description="Write every DLQ message (body, attributes and what inspect shows) to a JSON Lines file, mode "
        "0600; the messages stay in the DLQ.\n--output json: one object, {exported, out, dlq_url}.",
        examples=("rotaudit dlq export --out dlq-$(date +%F).jsonl",),
        exit_codes=gone,
    )
    export.add_argument("--out", type=Path, required=True, help="the .jsonl file to write (mode 0600)")
    _common(export)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hold",
        type=positive_int,
        default=DEFAULT_HOLD_S,
        help=f"seconds each message stays hidden while this command works on it, and after a crash "
        f"(default {DEFAULT_HOLD_S}); a walk longer than this may stop early, never lose anything",
    )
    parser.add_argument("--config", type=Path, help="TOML file; environment variables override it")


# -- inspect ----------------------------------------------------------------------------------------------


async def _inspect(args: argparse.Namespace) -> int:
    config = load_settings(args)
    async with open_aws(config, SERVICES) as aws:
        dlq_url = await resolve_dlq_url(aws, config.queue_url, config.dlq_url)
        messages = await read_all(aws, dlq_url, limit=args.limit, hold_s=args.hold)
        depth = await queue_depth(aws, dlq_url)
    now = utc_now()
    if args.output == "json":
        summaries = [message.summary(now) for message in messages]
        print_json({"messages": summaries, "visible": depth.visible, "in_flight": depth.in_flight})
    else:
        print("\n".join(table(messages, now)))
    say(args, f"{len(messages)} shown; the DLQ holds about {depth.visible} visible and {depth.in_flight} in flight")
    return EXIT_OK


def table(messages: Sequence[DlqMessage], now: datetime) -> list[str]:
    """Aligned lines: event, secret, rotation id, reject reason, receive count, age."""
    header = ("EVENT", "SECRET", "ROTATION", "REASON", "RECEIVES", "AGE")
    rows = [
        (
            m.event_name or "-",
            m.secret_name or "-",
            m.rotation_id or "-",
            m.reason,
            str(m.receive_count),
            format_age(m.age_s(now)),
        )
        for m in messages
    ]
    return aligned(header, rows)


def format_age(seconds: float | None) -> str:
    """45s, 12m05s, 3h04m, 2d03h; '-' when unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


# -- replay -----------------------------------------------------------------------------------------------


async def _replay(args: argparse.Namespace) -> int:
    filters = ReplayFilter(tuple(args.secret), tuple(args.event), tuple(args.reason), args.since)
    if args.move_task and not (filters.empty and args.max is None and not args.dry_run):
        print("rotaudit dlq replay: --move-task moves everything: no filters, --max or --dry-run", file=sys.stderr)
        return EXIT_USAGE
    required = ("queue_url",) if args.dry_run else ("queue_url", "audit_table")
    config = load_settings(args, required=required if args.table is None else required[:1])
    if args.table:
        config = dataclasses.replace(config, audit_table=args.table)
    async with open_aws(config, SERVICES) as aws:
        dlq_url = await resolve_dlq_url(aws, config.queue_url, config.dlq_url)
        who = await identify_operator(aws)
        depth = await queue_depth(aws, dlq_url)
        if args.move_task and await _handed_to_sqs(aws, config, dlq_url, depth.visible, args, who):
            return EXIT_OK
        bar = ProgressBar(sys.stderr, depth.visible, enabled=not (args.quiet or dumb_terminal()))
        replayer = Replayer(
            aws,
            dlq_url=dlq_url,
            queue_url=config.queue_url,
            table=config.audit_table,
            filters=filters,
            max_messages=args.max,
            rate=args.rate,
            dry_run=args.dry_run,
            hold_s=args.hold,
            who=who,
            on_progress=bar.update,
        )
        try:
            report = await replayer.run()
        finally:
            bar.close()
    if args.output == "json":
        print_json(report_json(report, utc_now()))
    else:
        print("\n".join(report_lines(report, utc_now())))
    counts = report.counts
    return EXIT_FAILURE if counts.failed or counts.undeleted else EXIT_OK


async def _handed_to_sqs(
    aws: Aws, config: Config, dlq_url: str, messages: int, args: argparse.Namespace, who: tuple[str, str]
) -> bool:
    """Start a StartMessageMoveTask and record it; False where SQS has none (the emulator) or it is not allowed."""
    try:
        handle = await start_move_task(aws, dlq_url=dlq_url, queue_url=config.queue_url, rate=args.rate)
    except AwsError as exc:
        say(args, f"rotaudit dlq replay: StartMessageMoveTask failed ({exc.code}): replaying one by one")
        return False
    replay_id = await record_move_task(
        aws,
        config.audit_table,
        dlq_url=dlq_url,
        queue_url=config.queue_url,
        task_handle=handle,
        messages=messages,
        who=who,
    )
    if args.output == "json":
        print_json(
            {
                "replay_id": replay_id,
                "method": "move_task",
                "dry_run": False,
                "status": "started",
                "task_handle": handle,
            }
        )
    else:
        print(f"replay {replay_id}: handed {messages} messages to SQS move task {handle} (status: started)")
    return True


def report_json(report: ReplayReport, now: datetime) -> dict[str, Any]:
    """`--output json`: the replay's id, status and counts; a dry run adds what it would replay."""
    summary: dict[str, Any] = {
        "replay_id": report.replay_id,
        "method": "replay",
        "dry_run": report.dry_run,
        "status": report.status,
    }
    summary.update(vars(report.counts))
    if report.dry_run:
        summary["selected"] = [m.summary(now) for m in report.selected]
    return summary


def report_lines(report: ReplayReport, now: datetime) -> list[str]:
    """The summary: matched, replayed, skipped, failed; a dry run lists what it would replay."""
    counts = report.counts
    if report.dry_run:
        lines = table(report.selected, now) if report.selected else []
        return [*lines, f"dry run: would replay {counts.matched} (skipped {counts.skipped}); nothing was moved"]
    line = (
        f"replay {report.replay_id}: matched {counts.matched}, replayed {counts.replayed}, "
        f"skipped {counts.skipped}, failed {counts.failed}"
    )
    if counts.undeleted:
        line += f"; {counts.undeleted} sent but still in the DLQ (a later replay duplicates them, harmlessly)"
    return [line]


class ProgressBar:
    """One line on `stream`, redrawn in place, only when the stream is a terminal and `enabled` (the command turns it
    off for -q and TERM=dumb). Plain ASCII without colour, so NO_COLOR leaves it as it is."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, *, enabled: bool = True) -> None:
        self.stream = stream
        self.total = total
        self.enabled = enabled and stream.isatty()
        self._drawn = False

    def update(self, counts: Any) -> None:
        if not self.enabled:
            return
        examined = counts.matched + counts.skipped
        filled = int(self.WIDTH * min(1.0, examined / self.total)) if self.total else 0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\r[{bar}] {examined}/{self.total or '?'} examined, {counts.replayed} replayed, "
            f"{counts.skipped} skipped, {counts.failed} failed"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


# -- export -----------------------------------------------------------------------------------------------


async def _export(args: argparse.Namespace) -> int:
    config = load_settings(args)
    out: Path = args.out
    count = 0
    async with open_aws(config, SERVICES) as aws:
        dlq_url = await resolve_dlq_url(aws, config.queue_url, config.dlq_url)
        # Bodies may be sensitive. mkstemp picks an unpredictable name and opens it O_CREAT|O_EXCL|O_NOFOLLOW, so a
        # file or symlink planted beside `out` is neither reused (with its mode) nor written through; fchmod states
        # 0600 whatever the umask or the platform's default.
        fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                async with walk(aws, dlq_url, hold_s=args.hold) as reader:
                    async for batch in reader.batches():
                        for message in batch:
                            handle.write(json.dumps(export_record(message), ensure_ascii=False) + "\n")
                        count += len(batch)
            os.replace(partial, out)
        finally:
            with contextlib.suppress(FileNotFoundError):  # gone once renamed
                os.unlink(partial)
    if args.output == "json":
        print_json({"exported": count, "out": str(out), "dlq_url": dlq_url})
    else:
        print(f"exported {count} messages from {dlq_url} to {out}")
    return EXIT_OK


def export_record(message: DlqMessage) -> dict[str, Any]:
    """Everything needed to restore or study a message: body, message attributes, and what inspect shows."""
    now = utc_now()
    return {**message.summary(now), "message_attributes": message.message_attributes, "body": message.body}


# -- argument types ---------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO-8601 time (naive means UTC) or an age before `now` like 90s, 30m, 6h, 2d, 1w; ValueError if neither."""
    text = text.strip()
    age = _AGE.match(text)
    if age:
        return now - timedelta(**{_UNITS[age[2]]: int(age[1])})
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _since(text: str) -> datetime:
    try:
        return parse_since(text, utc_now())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO-8601 time nor an age like 30m, 6h, 2d") from None
