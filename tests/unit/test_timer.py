"""Schedules in EventBridge syntax (table-driven) and the drift-free timer loop on a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from daemon.timer import Timer, parse_schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NEXT_FIRES = [
    ("rate(1 minute)", "2026-01-01T10:07:30", "2026-01-01T10:08:00"),
    ("rate(5 minutes)", "2026-01-01T10:07:30", "2026-01-01T10:10:00"),
    ("rate(5 minutes)", "2026-01-01T10:10:00", "2026-01-01T10:15:00"),
    ("rate(1 hour)", "2026-01-01T10:59:59.999", "2026-01-01T11:00:00"),
    ("rate(1 hour)", "2026-01-01T11:00:00", "2026-01-01T12:00:00"),
    ("rate(2 hours)", "2026-01-01T11:00:00", "2026-01-01T12:00:00"),
    ("rate(1 day)", "2026-01-01T10:00:00", "2026-01-02T00:00:00"),
    ("cron(0/15 * * * ? *)", "2026-01-01T10:07:00", "2026-01-01T10:15:00"),
    ("cron(0/15 * * * ? *)", "2026-12-31T23:59:30", "2027-01-01T00:00:00"),
    ("cron(0 8 1 * ? *)", "2026-01-15T00:00:00", "2026-02-01T08:00:00"),
    ("cron(0 9 ? * MON-FRI *)", "2026-01-02T09:00:00", "2026-01-05T09:00:00"),  # Friday -> Monday
    ("cron(5,35 8-10 ? * SAT,SUN *)", "2026-01-02T12:00:00", "2026-01-03T08:05:00"),
    ("cron(5,35 8-10 ? * SAT,SUN *)", "2026-01-03T08:05:00", "2026-01-03T08:35:00"),
    ("cron(5,35 8-10 ? * SAT,SUN *)", "2026-01-03T10:35:00", "2026-01-04T08:05:00"),
    ("cron(0 0 L * ? *)", "2024-02-10T00:00:00", "2024-02-29T00:00:00"),  # leap year
    ("cron(0 0 L * ? *)", "2026-02-10T00:00:00", "2026-02-28T00:00:00"),
    ("cron(0 12 15W * ? *)", "2026-08-01T00:00:00", "2026-08-14T12:00:00"),  # the 15th is a Saturday
    ("cron(0 12 15W * ? *)", "2026-03-01T00:00:00", "2026-03-16T12:00:00"),  # the 15th is a Sunday
    ("cron(0 12 1W * ? *)", "2026-07-31T13:00:00", "2026-08-03T12:00:00"),  # never back into July
    ("cron(0 12 LW * ? *)", "2026-05-01T00:00:00", "2026-05-29T12:00:00"),  # the 31st is a Sunday
    ("cron(0 9 ? * 2#1 *)", "2026-01-01T00:00:00", "2026-01-05T09:00:00"),  # first Monday
    ("cron(0 9 ? * 2#1 *)", "2026-01-05T09:00:00", "2026-02-02T09:00:00"),
    ("cron(0 9 ? * 6L *)", "2026-01-01T00:00:00", "2026-01-30T09:00:00"),  # last Friday
    ("cron(0 9 ? * 6L *)", "2026-01-30T09:00:00", "2026-02-27T09:00:00"),
    ("cron(0 0 ? * L *)", "2026-01-01T00:00:00", "2026-01-03T00:00:00"),  # last day of the week: Saturday
    ("cron(0 0 ? * L *)", "2026-01-03T00:00:00", "2026-01-10T00:00:00"),
    ("cron(30 2 29 2 ? *)", "2025-03-01T00:00:00", "2028-02-29T02:30:00"),
    ("cron(*/20 * ? * 1 2027-2028)", "2026-06-01T00:00:00", "2027-01-03T00:00:00"),
    ("cron(0 0 1 1 ? 2020)", "2026-01-01T00:00:00", None),
]


@pytest.mark.parametrize(("expression", "moment", "expected"), NEXT_FIRES)
def test_next_fire(expression: str, moment: str, expected: str | None) -> None:
    """The first fire time strictly after a moment, for rate and cron schedules."""
    fire = parse_schedule(expression).next_after(at(moment))
    assert fire == (at(expected) if expected else None)


LATEST_FIRES = [
    ("rate(1 hour)", "2026-01-01T10:20:00", "2026-01-01T10:00:00"),
    ("rate(1 hour)", "2026-01-01T10:00:00", "2026-01-01T10:00:00"),
    ("rate(15 minutes)", "2026-01-01T10:29:59", "2026-01-01T10:15:00"),
    ("cron(0 9 ? * MON-FRI *)", "2026-01-04T12:00:00", "2026-01-02T09:00:00"),  # Sunday -> Friday
    ("cron(0 0 L * ? *)", "2026-03-10T00:00:00", "2026-02-28T00:00:00"),
    ("cron(0 12 15W * ? *)", "2026-08-14T11:59:00", "2026-07-15T12:00:00"),
    ("cron(0 9 ? * 2#1 *)", "2026-02-01T00:00:00", "2026-01-05T09:00:00"),
    ("cron(0/15 * * * ? *)", "2027-01-01T00:14:59", "2027-01-01T00:00:00"),
    ("cron(0 0 1 1 ? 2020)", "2026-06-01T00:00:00", "2020-01-01T00:00:00"),
    ("cron(0 0 1 1 ? 2020)", "2019-06-01T00:00:00", None),
]


@pytest.mark.parametrize(("expression", "moment", "expected"), LATEST_FIRES)
def test_latest_fire(expression: str, moment: str, expected: str | None) -> None:
    """The start of the window a moment falls in: the last fire time at or before it."""
    fire = parse_schedule(expression).latest_at_or_before(at(moment))
    assert fire == (at(expected) if expected else None)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(5 seconds)",
        "rate(5minutes)",
        "hourly",
        "",
        "cron(0 9 * * * *)",
        "cron(0 9 ? * ? *)",
        "cron(0 9 * * ?)",
        "cron(60 * * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 ? 13 * *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 ? * 2#6 *)",
        "cron(0 0 * * ? 2200)",
        "cron(10-5 * * * ? *)",
        "cron(*/0 * * * ? *)",
        "cron(0 0 * FOO ? *)",
        "cron(0 0 1,,2 * ? *)",
    ],
)
def test_invalid_schedules_are_refused(expression: str) -> None:
    """Malformed expressions raise ValueError, so start-up can name the setting."""
    with pytest.raises(ValueError, match=r"\S"):
        parse_schedule(expression)


PROPERTY_EXPRESSIONS = [
    "rate(7 minutes)",
    "rate(3 hours)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(15 3 L * ? *)",
    "cron(0 12 10W * ? *)",
    "cron(0 9 ? * 3#2 *)",
    "cron(45 23 ? JAN,JUL 7L *)",
]


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(PROPERTY_EXPRESSIONS),
    moment=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)),
)
def test_windows_are_consistent(expression: str, moment: datetime) -> None:
    """Around any moment: latest <= moment < next, and the two are neighbouring fire times."""
    schedule = parse_schedule(expression)
    latest, upcoming = schedule.latest_at_or_before(moment), schedule.next_after(moment)
    assert latest is not None
    assert upcoming is not None
    assert latest <= moment < upcoming
    assert schedule.next_after(latest) == upcoming
    assert schedule.latest_at_or_before(upcoming) == upcoming


class FakeClock:
    """Time that moves only when someone sleeps (or a job says it took time)."""

    def __init__(self, start: str) -> None:
        self.at = at(start)

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        await asyncio.sleep(0)


async def run_timer(
    timer: Timer, fires: int, *, work_s: float = 0.0, fail_first: bool = False
) -> list[tuple[datetime, datetime]]:
    """Run until `fires` jobs have started; return (window, start time) for each."""
    clock_now = timer.clock
    started: list[tuple[datetime, datetime]] = []
    stop = asyncio.Event()
    active = 0

    async def job(window: datetime) -> None:
        nonlocal active
        active += 1
        assert active == 1, "runs overlapped"
        started.append((window, clock_now()))
        if len(started) >= fires:
            stop.set()
        await timer.sleep(work_s)
        active -= 1
        if fail_first and len(started) == 1:
            raise RuntimeError("boom")

    await asyncio.wait_for(timer.run(job, stop), timeout=10)
    return started


async def test_fires_on_the_schedule_without_drift() -> None:
    """Jobs that take 7 s still start on the minute, every minute."""
    clock = FakeClock("2026-01-01T10:00:30")
    timer = Timer(parse_schedule("rate(1 minute)"), clock=clock.now, sleep=clock.sleep, catch_up=False)
    started = await run_timer(timer, 5, work_s=7)
    assert [s for _, s in started] == [at(f"2026-01-01T10:0{m}:00") for m in range(1, 6)]
    assert [w for w, _ in started] == [s for _, s in started]


async def test_catch_up_runs_the_window_in_progress_at_start() -> None:
    """A replica that starts at 10:20 runs the 10:00 window at once, then 11:00."""
    clock = FakeClock("2026-01-01T10:20:00")
    timer = Timer(parse_schedule("rate(1 hour)"), clock=clock.now, sleep=clock.sleep)
    started = await run_timer(timer, 2)
    assert started == [
        (at("2026-01-01T10:00:00"), at("2026-01-01T10:20:00")),
        (at("2026-01-01T11:00:00"), at("2026-01-01T11:00:00")),
    ]


async def test_without_catch_up_the_first_run_waits_for_the_next_window() -> None:
    """With catch-up off, a replica that starts at 10:20 first runs at 11:00."""
    clock = FakeClock("2026-01-01T10:20:00")
    timer = Timer(parse_schedule("rate(1 hour)"), clock=clock.now, sleep=clock.sleep, catch_up=False)
    assert await run_timer(timer, 1) == [(at("2026-01-01T11:00:00"), at("2026-01-01T11:00:00"))]


async def test_an_overrunning_job_is_followed_by_the_latest_due_window() -> None:
    """A run that takes 2.5 windows never overlaps the next; the skipped windows are logged."""
    clock = FakeClock("2026-01-01T09:59:59")
    with capture_logs() as logs:
        timer = Timer(parse_schedule("rate(1 minute)"), clock=clock.now, sleep=clock.sleep, catch_up=False)
        started = await run_timer(timer, 3, work_s=150)
    assert started == [
        (at("2026-01-01T10:00:00"), at("2026-01-01T10:00:00")),
        (at("2026-01-01T10:02:00"), at("2026-01-01T10:02:30")),
        (at("2026-01-01T10:05:00"), at("2026-01-01T10:05:00")),
    ]
    skipped = [entry for entry in logs if entry["event"] == "timer.windows_skipped"]
    assert [entry["first_skipped"] for entry in skipped[:2]] == [
        "2026-01-01T10:01:00+00:00",
        "2026-01-01T10:03:00+00:00",
    ]


async def test_a_failing_job_is_logged_and_the_timer_goes_on() -> None:
    """The first run raises; it is logged as timer.job_failed and the next window still runs."""
    clock = FakeClock("2026-01-01T10:00:30")
    with capture_logs() as logs:
        timer = Timer(parse_schedule("rate(1 minute)"), clock=clock.now, sleep=clock.sleep, catch_up=False)
        started = await run_timer(timer, 2, fail_first=True)
    assert len(started) == 2
    assert [entry["error_type"] for entry in logs if entry["event"] == "timer.job_failed"] == ["RuntimeError"]


async def test_jitter_delays_the_start_but_not_the_window() -> None:
    """With jitter, a run starts up to jitter_s after its fire time and still names its window."""
    clock = FakeClock("2026-01-01T10:00:30")
    timer = Timer(
        parse_schedule("rate(1 minute)"),
        clock=clock.now,
        sleep=clock.sleep,
        jitter_s=20,
        rng=lambda: 0.5,
        catch_up=False,
    )
    started = await run_timer(timer, 2)
    assert started == [
        (at("2026-01-01T10:01:00"), at("2026-01-01T10:01:10")),
        (at("2026-01-01T10:02:00"), at("2026-01-01T10:02:10")),
    ]


async def test_stop_interrupts_a_long_wait() -> None:
    """Setting stop ends a timer that is waiting a day for its next fire, at once."""
    timer = Timer(parse_schedule("rate(1 day)"), catch_up=False)
    stop = asyncio.Event()

    async def job(_: datetime) -> None:
        raise AssertionError("must not run")

    task = asyncio.create_task(timer.run(job, stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=2)


async def test_a_schedule_that_never_fires_again_ends_the_timer() -> None:
    """A cron limited to a past year ends the loop with timer.schedule_exhausted instead of spinning."""
    clock = FakeClock("2026-01-01T00:00:00")
    with capture_logs() as logs:
        timer = Timer(parse_schedule("cron(0 0 1 1 ? 2020)"), clock=clock.now, sleep=clock.sleep)
        await asyncio.wait_for(timer.run(lambda _: asyncio.sleep(0), asyncio.Event()), timeout=2)
    assert [entry["event"] for entry in logs] == ["timer.schedule_exhausted"]
