"""Business days, one calendar for everything that counts them: when a reminder is due
(counting forward from a moment) and how long a client took (counting what elapsed).
Weekends do not count; both are judged in the client's own time zone."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

_MONDAY = date(2001, 1, 1)


def business_days_after(start: datetime, days: int, zone: tzinfo, hour: int) -> datetime:
    """`days` working days after `start`, at `hour` o'clock in the client's zone."""
    day = start.astimezone(zone).date()
    added = 0
    while added < days or day.weekday() >= 5:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return datetime.combine(day, time(hour), zone).astimezone(UTC)


@lru_cache(maxsize=256)
def _business_position(moment: datetime, zone: tzinfo) -> float:
    """Business days from a fixed Monday to `moment`, counting only weekday wall time."""
    local = moment.astimezone(zone)
    weeks, weekday = divmod((local.date() - _MONDAY).days, 7)
    position = weeks * 5 + min(weekday, 5)
    if weekday < 5:
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        position += (seconds + local.microsecond / 1e6) / 86400
    return position


def business_days(start: datetime, end: datetime, zone: tzinfo = UTC) -> float:
    """Weekday time between two moments, in days; weekend hours do not count.
    Friday 12:00 to Tuesday 12:00 is 2.0."""
    return max(_business_position(end, zone) - _business_position(start, zone), 0.0)
