"""`rotaudit dlq inspect|replay|export`: look at the dead-letter queue, send messages back, archive them."""

from __future__ import annotations

import argparse
import contextlib
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
from daemon.cli.common import Handler, open_aws
from daemon.cli.output import aligned
from daemon.config import Config, load_config
from daemon.dlq.reader import DEFAULT_HOLD_S, DlqMessage, read_all, walk
from daemon.dlq.replay import (
    Replayer,
    ReplayFilter,
    ReplayReport,
    identify_operator,
    record_move_task,
    start_move_task,
)
from daemon.errors import EXIT_FAILURE, EXIT_OK, AwsError
from daemon.queues import queue_depth, resolve_dlq_url
from daemon.timer import utc_now

SERVICES = ("sqs", "dynamodb", "sts")
EXIT_USAGE = 2
_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(commands: Any) -> None:
    """Add `dlq inspect|replay|export`; each sets `handler`: an async function of the args returning an exit code."""
    dlq = commands.add_parser("dlq", help="inspect, replay or export the dead-letter queue")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    inspect = actions.add_parser("inspect", help="one line per message; every message stays where it is")
    inspect.add_argument("--limit", type=_positive_int, default=100, help="at most N messages (default 100)")
    inspect.add_argument("--json", action="store_true", help="one JSON object per message and line")
    _common(inspect, _inspect)

    replay = actions.add_parser("replay", help="send matching messages back to the source queue (send, then delete)")
    replay.add_argument("--dry-run", action="store_true", help="report what would be replayed; move nothing")
    replay.add_argument("--max", type=_positive_int, help="replay at most N messages")
    replay.add_argument("--rate", type=_positive_float, help="at most R messages per second")
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
    replay.add_argument("--json", action="store_true", help="the summary as one JSON object")
    _common(replay, _replay)

    export = actions.add_parser("export", help="copy every message to a JSON Lines file, leaving them in place")
    export.add_argument("--out", type=Path, required=True, help="the .jsonl file to write (mode 0600)")
    _common(export, _export)


def _common(parser: argparse.ArgumentParser, handler: Handler) -> None:
    parser.add_argument(
        "--hold",
        type=_positive_int,
        default=DEFAULT_HOLD_S,
        help=f"seconds each message stays hidden while this command works on it, and after a crash "
        f"(default {DEFAULT_HOLD_S}); a walk longer than this may stop early, never lose anything",
    )
    parser.add_argument("--config", type=Path, help="TOML file; environment variables override it")
    parser.set_defaults(handler=handler)


# -- inspect ----------------------------------------------------------------------------------------------


async def _inspect(args: argparse.Namespace) -> int:
    config = load_config(toml_path=args.config, required=())
    async with open_aws(config, SERVICES) as aws:
        dlq_url = await resolve_dlq_url(aws, config.queue_url, config.dlq_url)
        messages = await read_all(aws, dlq_url, limit=args.limit, hold_s=args.hold)
        depth = await queue_depth(aws, dlq_url)
    now = utc_now()
    if args.json:
        for message in messages:
            print(json.dumps(message.summary(now)))
    else:
        print("\n".join(table(messages, now)))
    print(
        f"{len(messages)} shown; the DLQ holds about {depth.visible} visible and {depth.in_flight} in flight",
        file=sys.stderr,
    )
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
    config = load_config(toml_path=args.config, required=required)
    async with open_aws(config, SERVICES) as aws:
        dlq_url = await resolve_dlq_url(aws, config.queue_url, config.dlq_url)
        who = await identify_operator(aws)
        depth = await queue_depth(aws, dlq_url)
        if args.move_task and await _handed_to_sqs(aws, config, dlq_url, depth.visible, args.rate, who):
            return EXIT_OK
        bar = ProgressBar(sys.stderr, depth.visible)
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
    print("\n".join(report_lines(report, utc_now(), as_json=args.json)))
    counts = report.counts
    return EXIT_FAILURE if counts.failed or counts.undeleted else EXIT_OK


async def _handed_to_sqs(
    aws: Aws, config: Config, dlq_url: str, messages: int, rate: float | None, who: tuple[str, str]
) -> bool:
    """Start a StartMessageMoveTask and record it; False where SQS has none (the emulator) or it is not allowed."""
    try:
        handle = await start_move_task(aws, dlq_url=dlq_url, queue_url=config.queue_url, rate=rate)
    except AwsError as exc:
        print(f"rotaudit dlq replay: StartMessageMoveTask failed ({exc.code}): replaying one by one", file=sys.stderr)
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
    print(json.dumps({"replay_id": replay_id, "method": "move_task", "task_handle": handle}))
    return True


def report_lines(report: ReplayReport, now: datetime, *, as_json: bool) -> list[str]:
    """The summary: matched, replayed, skipped, failed; a dry run lists what it would replay."""
    counts = report.counts
    if as_json:
        summary: dict[str, Any] = {"replay_id": report.replay_id, "dry_run": report.dry_run, "status": report.status}
        summary.update(vars(counts))
        if report.dry_run:
            summary["selected"] = [m.summary(now) for m in report.selected]
        return [json.dumps(summary)]
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
    """One line on `stream`, redrawn in place, only when the stream is a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.enabled = stream.isatty()
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
    config = load_config(toml_path=args.config, required=())
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
    print(json.dumps({"exported": count, "out": str(out), "dlq_url": dlq_url}))
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


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value
