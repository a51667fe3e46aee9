"""When an adverse determination's notice is due, and the day a statement or notice leaves.

A denied or reduced post-service claim must be noticed within 30 days of its receipt (ERISA,
29 CFR 2560.503-1(f)(2)(iii)(B); `prompt_notice_days`, stricter where a state says so). What
counts is the day the notice leaves, not the date printed on it:

- an email leaves the day it is sent;
- a paper piece leaves on the print vendor's mail date: a piece handed over after the day's
  cut-off (`paper_cutoff_hour`, UTC) waits for the next business day's batch, and the vendor
  mails it `paper_production_days` business days after that batch.

Business days are the mail's: Monday to Friday except the public holidays of
`mail_holidays_country` (the `holidays` package; in the US the federal holidays, which the
Postal Service observes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

import numpy as np

CHANNELS = ("email", "paper")


@cache
def _holidays(country: str, first_year: int, last_year: int) -> tuple[date, ...]:
    import holidays

    return tuple(sorted(holidays.country_holidays(country, years=range(first_year, last_year + 1))))


@dataclass(frozen=True, slots=True)
class MailCalendar:
    """The mail's business days and the print vendor's timings."""

    country: str = "US"
    cutoff_hour: int = 17
    production_days: int = 1

    def _calendar(self, day: date) -> np.busdaycalendar:
        return np.busdaycalendar(holidays=list(_holidays(self.country, day.year - 1, day.year + 1)))

    def is_business_day(self, day: date) -> bool:
        return bool(np.is_busday(day, busdaycal=self._calendar(day)))

    def business_day(self, day: date, offset: int = 0) -> date:
        """The business day `offset` business days after `day` rolled forward to a business day."""
        moved = np.busday_offset(day, offset, roll="forward", busdaycal=self._calendar(day))
        return moved.astype(date)  # type: ignore[no-any-return]

    def leaves(self, channel: str, ready: datetime) -> date:
        """The day a piece ready at `ready` leaves: sent the same day by email; on paper, in the
        first batch whose cut-off (UTC) it makes, mailed `production_days` business days later."""
        if ready.tzinfo is None:
            raise ValueError("a moment without a time zone: give it in UTC")
        ready = ready.astimezone(UTC)
        if channel == "email":
            return ready.date()
        if channel != "paper":
            raise ValueError(f"unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}")
        handed = ready.date() if ready.hour < self.cutoff_hour else ready.date() + timedelta(days=1)
        return self.business_day(handed, self.production_days)


@dataclass(frozen=True, slots=True)
class NoticeRule:
    """Which adverse claims a run's statements reach too late.

    `departs` is the day the run's statements leave on each channel. A claim received on day R is
    due by R + `days`; the statement is on time when it leaves by then. So a claim needs a
    prompt notice when it was received before `deadline(channel)` = departs − `days`."""

    days: int
    departs: dict[str, date] = field(default_factory=dict)

    @classmethod
    def for_run(cls, days: int, calendar: MailCalendar, ready: datetime) -> NoticeRule:
        """The rule for statements ready to leave at `ready` (aware; see `Context.notice_rule`)."""
        return cls(days, {channel: calendar.leaves(channel, ready) for channel in CHANNELS})

    @classmethod
    def leaving_on(cls, days: int, day: date) -> NoticeRule:
        """Statements that leave on `day` on every channel."""
        return cls(days, dict.fromkeys(CHANNELS, day))

    def due(self, received: date) -> date:
        return received + timedelta(days=self.days)

    def deadline(self, channel: str) -> date:
        """Claims received before this day miss their notice deadline on this channel."""
        return self.departs[channel] - timedelta(days=self.days)

    @property
    def latest_deadline(self) -> date:
        """The latest of the channels' deadlines: a claim received before it misses on at least
        one channel (a prefilter; `deadline(channel)` decides)."""
        return max(self.deadline(channel) for channel in CHANNELS)

    def misses(self, channel: str, received: date) -> bool:
        """Does the run's statement on `channel` leave after the notice of a claim received on
        `received` is due?"""
        return received < self.deadline(channel)
