"""Schedules in EventBridge syntax (`rate(...)`, `cron(...)`, UTC) and a drift-free async timer that runs a job on them.

The arithmetic is pure: `parse_schedule(text)` gives a `Schedule` whose `next_after(moment)` and
`latest_at_or_before(moment)` are the fire times around a moment. A fire time names a *window* (the time from
one fire to the next): every replica computes the same windows, which is what leases key on.

- `rate(N minutes|hours|days)` fires at multiples of the interval since 1970-01-01T00:00Z, so `rate(1 hour)`
  fires on the hour. (EventBridge anchors a rate rule at its creation time; replicas need a shared anchor.)
- `cron(minutes hours day-of-month month day-of-week year)`, UTC: `*`, `,`, `-`, `/`, names (JAN-DEC,
  SUN-SAT; day-of-week 1 is Sunday); one of day-of-month and day-of-week is `?`; day-of-month also takes
  `L`, `LW` and `<n>W`; day-of-week takes `L`, `<d>L` and `<d>#<n>`.

`Timer.run(job, stop)` sleeps until each fire time (plus optional jitter) by reading the injected clock again
after every nap, so it does not drift; runs never overlap; a run that overran the next fire time is followed by
the latest due window at once, skipping the older ones; a failing job is logged and the timer goes on.

`every(interval_s, stop, job)` is the plain "every N seconds until stop" loop of the periodic jobs (the DLQ
monitor, the sync reconcile, the remediation job), and `nap` the one "sleep unless stopped".
"""

from __future__ import annotations

import asyncio
import calendar
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from daemon.errors import AwsError
from daemon.logs import get_logger

Clock = Callable[[], datetime]  # aware UTC datetimes; injected so tests can move time
Sleep = Callable[[float], Awaitable[None]]
Job = Callable[[datetime], Awaitable[None]]
Monotonic = Callable[[], float]  # seconds, for intervals: never jumps with the wall clock

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_YEAR, MAX_YEAR = 1970, 2199
_MINUTE = timedelta(minutes=1)
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6}
_MONTH_NAMES |= {"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Schedule(Protocol):
    """Fire times of a schedule, in UTC."""

    @property
    def expression(self) -> str:
        """The schedule as written."""

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`; None when the schedule never fires again."""

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before `moment`: the start of the window `moment` is in."""


@dataclass(frozen=True, slots=True)
class RateSchedule:
    expression: str
    interval_s: int

    def next_after(self, moment: datetime) -> datetime | None:
        step = timedelta(seconds=self.interval_s)
        return EPOCH + ((moment - EPOCH) // step + 1) * step

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        step = timedelta(seconds=self.interval_s)
        return EPOCH + ((moment - EPOCH) // step) * step


DayRule = Callable[[int, int, int], bool]  # (year, month, day) -> fires that day


@dataclass(frozen=True, slots=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: DayRule

    def _day_ok(self, moment: datetime) -> bool:
        return (
            moment.year in self.years
            and moment.month in self.months
            and self.day_matches(moment.year, moment.month, moment.day)
        )

    def next_after(self, moment: datetime) -> datetime | None:
        at = moment.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
        while at.year <= MAX_YEAR:
            if at.year not in self.years:
                at = datetime(at.year + 1, 1, 1, tzinfo=UTC)
                continue
            if at.month not in self.months:
                at = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
                continue
            hour = min((h for h in self.hours if h >= at.hour), default=None) if self._day_ok(at) else None
            if hour is None:
                at = datetime(at.year, at.month, at.day, tzinfo=UTC) + timedelta(days=1)
                continue
            if hour > at.hour:
                at = at.replace(hour=hour, minute=0)
            minute = min((m for m in self.minutes if m >= at.minute), default=None)
            if minute is not None:
                return at.replace(minute=minute)
            at = at.replace(minute=0) + timedelta(hours=1)
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        at = moment.astimezone(UTC).replace(second=0, microsecond=0)
        while at.year >= MIN_YEAR:
            if at.year not in self.years:
                at = datetime(at.year, 1, 1, tzinfo=UTC) - _MINUTE
                continue
            if at.month not in self.months:
                at = datetime(at.year, at.month, 1, tzinfo=UTC) - _MINUTE
                continue
            hour = max((h for h in self.hours if h <= at.hour), default=None) if self._day_ok(at) else None
            if hour is None:
                at = datetime(at.year, at.month, at.day, tzinfo=UTC) - _MINUTE
                continue
            if hour < at.hour:
                at = at.replace(hour=hour, minute=59)
            minute = max((m for m in self.minutes if m <= at.minute), default=None)
            if minute is not None:
                return at.replace(minute=minute)
            at = at.replace(minute=0) - _MINUTE
        return None


def parse_schedule(text: str) -> Schedule:
    """A `Schedule` for an EventBridge expression; ValueError names what is wrong."""
    text = text.strip()
    if rate := _RATE.fullmatch(text):
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1 or (count == 1) == unit.endswith("s"):
            raise ValueError("rate needs a positive number and a matching unit, e.g. rate(1 hour), rate(5 minutes)")
        return RateSchedule(text, count * _UNIT_S[unit.rstrip("s")])
    if cron := _CRON.fullmatch(text):
        return _parse_cron(text, cron.group(1).split())
    raise ValueError("must be rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year)")


def _parse_cron(text: str, fields: list[str]) -> CronSchedule:
    if len(fields) != 6:
        raise ValueError(f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ValueError("cron: exactly one of day-of-month and day-of-week must be '?'")
    return CronSchedule(
        expression=text,
        minutes=_field(minute, "minutes", 0, 59),
        hours=_field(hour, "hours", 0, 23),
        months=_field(month, "month", 1, 12, _MONTH_NAMES),
        years=_field(year, "year", MIN_YEAR, MAX_YEAR),
        day_matches=_day_of_month(dom) if dow == "?" else _day_of_week(dow),
    )


def _value(token: str, what: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    number = (names or {}).get(token.upper())
    if number is None:
        if not token.isdigit():
            raise ValueError(f"cron {what}: {token!r} is not a number{' or a name' if names else ''}")
        number = int(token)
    if not low <= number <= high:
        raise ValueError(f"cron {what}: {number} is outside {low}-{high}")
    return number


def _field(text: str, what: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """A set of values from `*`, lists, ranges and steps."""
    values: set[int] = set()
    for item in text.split(","):
        span, slash, step_text = item.partition("/")
        step = _value(step_text, what, 1, high - low + 1) if slash else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _value(first, what, low, high, names), _value(last, what, low, high, names)
            if start > end:
                raise ValueError(f"cron {what}: range {span} runs backwards")
        else:
            start = _value(span, what, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _aws_weekday(year: int, month: int, day: int) -> int:
    """1 = Sunday ... 7 = Saturday, as EventBridge counts."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday nearest to `day` without leaving the month (cron's `W`)."""
    last = calendar.monthrange(year, month)[1]
    day = min(day, last)
    weekday = calendar.weekday(year, month, day)  # Monday = 0
    if weekday == 5:  # Saturday: Friday before, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, unless that leaves the month
        return day + 1 if day < last else day - 2
    return day


def _day_of_month(text: str) -> DayRule:
    if text == "L":
        return lambda y, m, d: d == calendar.monthrange(y, m)[1]
    if text == "LW":
        return lambda y, m, d: d == _nearest_weekday(y, m, calendar.monthrange(y, m)[1])
    if text.endswith("W"):
        target = _value(text[:-1], "day-of-month", 1, 31)
        return lambda y, m, d: d == _nearest_weekday(y, m, target)
    days = _field(text, "day-of-month", 1, 31)
    return lambda y, m, d: d in days


def _day_of_week(text: str) -> DayRule:
    if text == "L":
        text = "7"  # the last day of the week: Saturday
    if "#" in text:
        weekday_text, _, nth_text = text.partition("#")
        weekday = _value(weekday_text, "day-of-week", 1, 7, _DAY_NAMES)
        nth = _value(nth_text, "day-of-week", 1, 5)
        return lambda y, m, d: _aws_weekday(y, m, d) == weekday and (d - 1) // 7 + 1 == nth
    if text.endswith("L"):
        weekday = _value(text[:-1], "day-of-week", 1, 7, _DAY_NAMES)
        return lambda y, m, d: _aws_weekday(y, m, d) == weekday and d + 7 > calendar.monthrange(y, m)[1]
    weekdays = _field(text, "day-of-week", 1, 7, _DAY_NAMES)
    return lambda y, m, d: _aws_weekday(y, m, d) in weekdays


class Timer:
    """Runs a job once per fire time of a schedule until `stop` is set."""

    def __init__(
        self,
        schedule: Schedule,
        *,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        jitter_s: float = 0.0,
        rng: Callable[[], float] = random.random,
        catch_up: bool = True,
        max_nap_s: float = 60.0,
        name: str = "timer",
    ) -> None:
        self.schedule = schedule
        self.clock = clock
        self.sleep = sleep
        self.jitter_s = jitter_s
        self.rng = rng
        self.catch_up = catch_up
        self.max_nap_s = max_nap_s
        self.log = get_logger(name)

    def first_fire(self) -> datetime | None:
        """With catch-up, the window in progress (a replica that starts mid-window runs it unless done)."""
        now = self.clock()
        upcoming = self.schedule.next_after(now)
        latest = self.schedule.latest_at_or_before(now) if self.catch_up and upcoming is not None else None
        return latest if latest is not None else upcoming

    async def run(self, job: Job, stop: asyncio.Event) -> None:
        fire = self.first_fire()
        while fire is not None and not stop.is_set():
            await self.sleep_until(fire + timedelta(seconds=self.rng() * self.jitter_s), stop)
            if stop.is_set():
                break
            try:
                await job(fire)
            except Exception as exc:  # a failed run must not end the timer
                self.log.error(
                    "timer.job_failed", window=fire.isoformat(), error=str(exc), error_type=type(exc).__name__
                )
            fire = self._following(fire)
        if fire is None:
            self.log.warning("timer.schedule_exhausted", schedule=self.schedule.expression)

    def _following(self, fire: datetime) -> datetime | None:
        upcoming = self.schedule.next_after(fire)
        due = self.schedule.latest_at_or_before(self.clock())
        if upcoming is None or due is None or due < upcoming:
            return upcoming
        if due > upcoming:
            self.log.warning("timer.windows_skipped", first_skipped=upcoming.isoformat(), running=due.isoformat())
        return due

    async def sleep_until(self, moment: datetime, stop: asyncio.Event) -> None:
        """Nap until the clock reads `moment` or `stop` is set, re-reading the clock after each nap."""
        while not stop.is_set() and (remaining := (moment - self.clock()).total_seconds()) > 0:
            await nap(self.sleep, min(remaining, self.max_nap_s), stop)


async def nap(sleep: Sleep, seconds: float, stop: asyncio.Event) -> None:
    """`sleep(seconds)`, cut short when `stop` is set."""
    sleeper = asyncio.ensure_future(sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)


async def every(
    interval_s: float,
    stop: asyncio.Event,
    job: Callable[[], Awaitable[object]],
    *,
    on_error: Callable[[AwsError], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    monotonic: Monotonic = time.monotonic,
) -> None:
    """Run `job` now, then every `interval_s` seconds, until `stop` is set.

    Drift-free like arq's `poll`: the wait is the interval less the time the run took, so runs keep their
    cadence; a run that overran is followed by the next at once, never by a burst of catch-up runs. An
    `AwsError` goes to `on_error` and the loop goes on; without `on_error` it ends the loop, as does any
    other exception (a crashed job ends the daemon, and the orchestrator restarts it).
    """
    due = monotonic()
    while not stop.is_set():
        try:
            await job()
        except AwsError as exc:
            if on_error is None:
                raise
            on_error(exc)
        due = max(due + interval_s, monotonic())
        await nap(sleep, due - monotonic(), stop)
