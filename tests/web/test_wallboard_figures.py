"""The wallboard's day in figures: pure functions over the call log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from desk.survey_reports import Tally
from web.pages.wallboard import (
    CHART_HEIGHT,
    HourFigures,
    LoggedCall,
    average_answer_seconds,
    bars,
    csat_payload,
    day_payload,
    duration,
    hour_figures,
    local_day_start,
)

DAY = datetime(2026, 1, 5, tzinfo=UTC)


def call(
    hour: float, outcome: str | None, wait: float | None, queue: str | None = "support"
) -> LoggedCall:
    return LoggedCall(DAY + timedelta(hours=hour), queue, outcome, wait)


def figures(*calls: LoggedCall) -> list[HourFigures]:
    return hour_figures(
        calls,
        day_start=DAY,
        hours=24,
        service_levels={"support": 20.0},
        default_service_level=30.0,
        short_abandon_seconds=5.0,
    )


def test_calls_are_counted_in_the_hour_they_started() -> None:
    counted = figures(
        call(9.1, "answered", 3), call(9.9, "abandoned", 40), call(10.0, "answered", 1)
    )
    assert [(f.hour, f.answered, f.abandoned) for f in counted if f.answered or f.abandoned] == [
        (9, 1, 1),
        (10, 1, 0),
    ]


def test_calls_outside_the_day_or_without_a_queue_are_left_out() -> None:
    counted = figures(
        call(-1, "answered", 1), call(24.5, "answered", 1), call(9, "answered", 1, queue=None)
    )
    assert sum(f.answered + f.abandoned for f in counted) == 0


@pytest.mark.parametrize(
    ("calls", "level"),
    [
        ([call(9, "answered", 20)], 100.0),  # at the threshold is within it
        ([call(9, "answered", 21)], 0.0),
        ([call(9, "answered", 25, queue="sales")], 100.0),  # sales: the default 30 s
        ([call(9, "answered", 3), call(9, "abandoned", 60)], 50.0),
        ([call(9, "answered", 3), call(9, "abandoned", 4)], 100.0),  # a short abandon
        ([call(9, "abandoned", 4)], None),  # nothing offered: no level, not 0 %
        ([], None),
    ],
)
def test_the_service_level_counts_answers_within_the_threshold_of_what_was_offered(
    calls: list[LoggedCall], level: float | None
) -> None:
    assert figures(*calls)[9].service_level_pct == level


def test_asa_is_the_mean_wait_of_answered_calls_per_queue() -> None:
    calls = [
        call(9, "answered", 10),
        call(9, "answered", 20),
        call(9, "abandoned", 90),
        call(9, "answered", 4, queue="sales"),
        call(9, "answered", None, queue="sales"),
    ]
    assert average_answer_seconds(calls) == {"sales": 2.0, "support": 15.0}


def test_bars_scale_to_the_highest_value_or_a_given_top() -> None:
    drawn = bars([0.0, 2.0, 4.0])
    assert [b["height"] for b in drawn] == [0.0, CHART_HEIGHT / 2, CHART_HEIGHT]
    assert [b["y"] for b in drawn] == [CHART_HEIGHT, CHART_HEIGHT / 2, 0.0]
    assert [b["height"] for b in bars([50.0], top=100.0)] == [CHART_HEIGHT / 2]
    assert bars([]) == []
    assert [b["height"] for b in bars([0.0, 0.0])] == [0.0, 0.0]


def test_the_day_payload_marks_hours_without_a_service_level() -> None:
    payload = day_payload(figures(call(9, "answered", 3)), {"support": 3.0}, csat=Tally())
    assert payload["service_level_known"][9] is True
    assert payload["service_level_known"][8] is False
    assert payload["calls"]["total"][9]["value"] == 1.0
    assert payload["asa"] == {"support": 3.0}


def test_csat_today_is_the_share_of_satisfied_answers_with_its_denominator() -> None:
    # Five answers: 5, 4, 4, 2, 1 — three satisfied; two of them also gave NPS 10 and 3.
    tally = Tally(
        answered=5, csat_n=5, csat_sum=16, csat_good=3, nps_n=2, promoters=1, detractors=1
    )
    assert csat_payload(tally) == {
        "answers": 5,
        "satisfied": 3,
        "percent": 60.0,
        "average": 3.2,
        "nps": 0.0,
        "nps_answers": 2,
    }


def test_a_day_without_answers_has_no_csat_figure() -> None:
    assert csat_payload(Tally()) == {
        "answers": 0,
        "satisfied": 0,
        "percent": None,
        "average": None,
        "nps": None,
        "nps_answers": 0,
    }


@pytest.mark.parametrize(
    ("now", "zone", "midnight"),
    [
        # 23:30 UTC is already the next day in Berlin (UTC+1 in winter).
        (datetime(2026, 1, 5, 23, 30, tzinfo=UTC), "Europe/Berlin", "2026-01-06T00:00:00+01:00"),
        (datetime(2026, 1, 5, 23, 30, tzinfo=UTC), "UTC", "2026-01-05T00:00:00+00:00"),
        # The day the clocks go forward starts at midnight in winter time.
        (datetime(2026, 3, 29, 12, 0, tzinfo=UTC), "Europe/Berlin", "2026-03-29T00:00:00+01:00"),
        (datetime(2026, 1, 5, 3, 0, tzinfo=UTC), "America/New_York", "2026-01-04T00:00:00-05:00"),
    ],
)
def test_the_wallboards_day_starts_at_the_call_centers_midnight(
    now: datetime, zone: str, midnight: str
) -> None:
    assert local_day_start(now, ZoneInfo(zone)).isoformat() == midnight


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "0s"),
        (-3, "0s"),
        (12.4, "12s"),
        (252, "4m 12s"),
        (3600, "1h 00m 00s"),
        (3725, "1h 02m 05s"),
    ],
)
def test_durations_read_as_on_the_wallboard(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown
