"""Schedules in EventBridge syntax (table-driven), the drift-free timer loop and `every`, on a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from daemon.errors import PermanentAwsError, TransientAwsError
from daemon.timer import Timer, every, nap, parse_schedule


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


# -- every: the periodic jobs' loop --------------------------------------------------------------------------


class FakeMonotonic:
    """Seconds that move only when someone sleeps (or a job says it took time); records each sleep asked for."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def _forever(_: float) -> None:
    """A sleep that never ends by itself: only a stop gets past it."""
    await asyncio.Event().wait()


async def run_every(
    interval_s: float, runs: int, *, work_s: list[float] | None = None, fail: dict[int, Exception] | None = None
) -> tuple[list[float], list[Exception], FakeMonotonic]:
    """Run `every` until `runs` jobs have started; return their start times, the errors handed on, the clock."""
    clock, stop = FakeMonotonic(), asyncio.Event()
    started: list[float] = []
    errors: list[Exception] = []

    async def job() -> None:
        started.append(clock.now)
        if len(started) >= runs:
            stop.set()
        clock.now += (work_s or [0.0] * runs)[len(started) - 1]
        if fail and len(started) in fail:
            raise fail[len(started)]

    await asyncio.wait_for(
        every(interval_s, stop, job, on_error=errors.append, sleep=clock.sleep, monotonic=clock), timeout=5
    )
    return started, errors, clock


EVERY_CADENCES = [
    # (interval, time each run takes, expected start times: the first run at once, at 100)
    (10.0, [0.0, 0.0, 0.0], [100.0, 110.0, 120.0]),
    (10.0, [3.0, 7.0, 0.0], [100.0, 110.0, 120.0]),  # the run's own time is taken off the wait: no drift
    (10.0, [25.0, 0.0, 0.0], [100.0, 125.0, 135.0]),  # an overrun: the next at once, then the cadence again
    (10.0, [10.0, 10.0, 0.0], [100.0, 110.0, 120.0]),  # runs exactly as long as the interval
]


@pytest.mark.parametrize(("interval_s", "work_s", "expected"), EVERY_CADENCES)
async def test_every_keeps_its_cadence(interval_s: float, work_s: list[float], expected: list[float]) -> None:
    """Runs start at once, then every interval from the last start; an overrun is followed at once, not in a burst."""
    started, errors, _ = await run_every(interval_s, len(expected), work_s=work_s)
    assert started == expected
    assert errors == []


async def test_every_hands_an_aws_error_on_and_goes_on() -> None:
    """A run that fails with an AWS error goes to on_error; the next run still comes on time."""
    failure = TransientAwsError("sqs", "get_queue_attributes", "Throttling", "slow down")
    started, errors, _ = await run_every(5.0, 3, fail={1: failure})
    assert started == [100.0, 105.0, 110.0]
    assert errors == [failure]


async def test_every_without_on_error_ends_on_an_aws_error() -> None:
    """With no on_error, an AWS error ends the loop: the job's supervisor sees it."""
    clock = FakeMonotonic()

    async def job() -> None:
        raise PermanentAwsError("sqs", "get_queue_attributes", "AccessDenied", "no")

    with pytest.raises(PermanentAwsError):
        await every(5.0, asyncio.Event(), job, sleep=clock.sleep, monotonic=clock)
    assert clock.sleeps == []


async def test_every_ends_on_any_other_error_even_with_on_error() -> None:
    """on_error takes AWS errors only: a bug in the job still ends the loop."""
    clock = FakeMonotonic()
    errors: list[Exception] = []

    async def job() -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await every(5.0, asyncio.Event(), job, on_error=errors.append, sleep=clock.sleep, monotonic=clock)
    assert errors == []


async def test_every_stop_set_during_a_run_means_no_more_runs() -> None:
    """A stop set while a run works ends the loop once the run is done, without waiting out the interval."""
    stop, runs = asyncio.Event(), []

    async def job() -> None:
        runs.append(1)
        stop.set()

    await asyncio.wait_for(every(86400.0, stop, job, sleep=_forever), timeout=1)
    assert runs == [1]


async def test_every_stop_cuts_a_long_wait_short() -> None:
    """Setting stop while `every` waits a day for the next run ends it at once."""
    stop, ran = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        assert not ran.is_set(), "ran twice"
        ran.set()

    task = asyncio.create_task(every(86400.0, stop, job, sleep=_forever))
    await asyncio.wait_for(ran.wait(), timeout=1)
    stop.set()
    await asyncio.wait_for(task, timeout=1)


async def test_nap_sleeps_the_whole_time_unless_stopped() -> None:
    """nap asks its sleep for the full time and returns once the sleep does."""
    clock = FakeMonotonic()
    await nap(clock.sleep, 7.5, asyncio.Event())
    assert clock.sleeps == [7.5]


async def test_nap_returns_at_once_when_already_stopped() -> None:
    """A nap with stop already set does not wait for its sleep."""
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(nap(_forever, 3600.0, stop), timeout=1)
