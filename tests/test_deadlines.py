"""The day a notice leaves, and which claims a run's statements reach after their deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipeline.deadlines import MailCalendar, NoticeRule

US = MailCalendar("US", cutoff_hour=17, production_days=1)


@pytest.mark.parametrize(("channel", "ready", "leaves"), [
    # email goes the day it is sent, weekend or holiday
    ("email", datetime(2026, 12, 5, 9), date(2026, 12, 5)),            # a Saturday
    ("paper", datetime(2027, 12, 30, 18), date(2028, 1, 4)),           # New Year's observed Friday 31st
    ("email", datetime(2026, 12, 25, 23), date(2026, 12, 25)),         # Christmas Day
    # paper: the day's batch if before the cut-off, then one business day to the mail date
    ("paper", datetime(2026, 12, 3, 16, 59), date(2026, 12, 4)),       # Thursday → Friday
    ("paper", datetime(2026, 12, 3, 17, 0), date(2026, 12, 7)),        # after the cut-off → Monday
    ("paper", datetime(2026, 12, 4, 10), date(2026, 12, 7)),           # Friday → Monday
    ("paper", datetime(2026, 12, 5, 10), date(2026, 12, 8)),           # Saturday: Monday's batch
    ("paper", datetime(2026, 12, 24, 10), date(2026, 12, 28)),         # Christmas Friday skipped
    ("paper", datetime(2027, 1, 15, 10), date(2027, 1, 19)),           # Friday; MLK Day Monday
    ("paper", datetime(2026, 7, 2, 10), date(2026, 7, 6)),             # July 4th observed Friday the 3rd
])
def test_the_day_a_piece_leaves(channel: str, ready: datetime, leaves: date) -> None:
    assert US.leaves(channel, ready.replace(tzinfo=UTC)) == leaves


def test_moments_are_taken_in_utc_and_must_say_their_zone() -> None:
    # 20:00 in New York on Thursday is 01:00 UTC on Friday: Friday's batch, mailed Monday
    new_york = timezone(timedelta(hours=-5))
    assert US.leaves("paper", datetime(2026, 12, 3, 20, tzinfo=new_york)) == date(2026, 12, 7)
    with pytest.raises(ValueError, match="time zone"):
        US.leaves("email", datetime(2026, 12, 3, 9))


def test_the_vendor_production_days_and_cut_off_are_settings() -> None:
    same_day = MailCalendar("US", cutoff_hour=12, production_days=0)
    assert same_day.leaves("paper", datetime(2026, 12, 3, 11, tzinfo=UTC)) == date(2026, 12, 3)
    assert same_day.leaves("paper", datetime(2026, 12, 3, 12, tzinfo=UTC)) == date(2026, 12, 4)
    slow = MailCalendar("US", cutoff_hour=17, production_days=3)
    assert slow.leaves("paper", datetime(2026, 12, 3, 9, tzinfo=UTC)) == date(2026, 12, 8)


def test_another_country_has_its_own_holidays() -> None:
    # 26 December is a holiday in the United Kingdom (Boxing Day), not in the United States
    assert US.is_business_day(date(2025, 12, 26))
    assert not MailCalendar("GB").is_business_day(date(2025, 12, 26))


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        US.leaves("fax", datetime(2026, 12, 3, tzinfo=UTC))


def test_a_claim_needs_a_notice_when_its_statement_leaves_after_the_due_date() -> None:
    # the run starts Thursday 3 December 2026 at 06:00: email leaves that day, paper Friday the 4th
    rule = NoticeRule.for_run(30, US, datetime(2026, 12, 3, 6, tzinfo=UTC))
    assert rule.departs == {"email": date(2026, 12, 3), "paper": date(2026, 12, 4)}
    received_2_nov, received_3_nov, received_4_nov = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
    assert rule.due(received_3_nov) == date(2026, 12, 3)
    # received 2 November: due 2 December, late on both channels
    assert received_2_nov < rule.deadline("email") and received_2_nov < rule.deadline("paper")
    assert rule.misses("email", received_2_nov) and rule.misses("paper", received_2_nov)
    days_late = {channel: (rule.departs[channel] - rule.due(received_2_nov)).days
                 for channel in ("email", "paper")}
    assert days_late == {"email": 1, "paper": 2}
    # received 3 November: due 3 December: the email is on time, the paper piece a day late
    assert not received_3_nov < rule.deadline("email") and received_3_nov < rule.deadline("paper")
    # received 4 November: on time everywhere
    assert not received_4_nov < rule.latest_deadline
    assert not rule.misses("paper", received_4_nov) and rule.departs["paper"] <= rule.due(received_4_nov)


def test_a_run_that_starts_late_moves_every_deadline() -> None:
    on_time = NoticeRule.for_run(30, US, datetime(2026, 12, 3, 6, tzinfo=UTC))
    late = NoticeRule.for_run(30, US, datetime(2026, 12, 21, 6, tzinfo=UTC))
    assert late.deadline("email") - on_time.deadline("email") == date(2026, 12, 21) - date(2026, 12, 3)
    assert late.latest_deadline > on_time.latest_deadline
