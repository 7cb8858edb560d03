"""Cron expressions (UTC): five fields ``minute hour day-of-month month day-of-week``, or
six with a leading ``second`` field; each field ``*``, a number, a range ``a-b``, a step
``*/n`` or ``a-b/n``, or a comma-separated list of these. ``@hourly``, ``@daily``,
``@weekly``, ``@monthly`` and ``@yearly`` are the usual shorthands. As in cron, when both
day fields are restricted a day matching either runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MAX_STEPS = 200_000


class CronError(ValueError):
    """The expression is not one this cron reads."""


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spread, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and step_text.isascii() else None
        if step_text and not step:
            raise CronError(f"{part!r}: a step is a whole number above 0")
        if spread == "*":
            start, end = low, high
        else:
            first, _, last = spread.partition("-")
            if not (first.isascii() and first.isdigit()) or (last and not last.isdigit()):
                raise CronError(f"{part!r} is not a number, a range or *")
            start, end = int(first), int(last) if last else int(first)
            if step and not last:
                end = high
        if not low <= start <= end <= high:
            raise CronError(f"{part!r} is out of {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0-6, Sunday 0 (7 is read as Sunday too)."""
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = _MACROS.get(expression.strip().lower(), expression.strip())
        fields = text.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise CronError("a cron expression has five fields (or six, seconds first)")
        parsed = [_field(f, low, high) for f, (low, high) in zip(fields, _BOUNDS, strict=True)]
        weekdays = frozenset(day % 7 for day in parsed[5])
        seconds, minutes, hours, days, months, _ = parsed
        return cls(
            expression=expression,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            any_day=fields[3] == "*",
            any_weekday=fields[5] == "*",
        )

    def _day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days
        in_week = (moment.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (an aware datetime, UTC)."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(MAX_STEPS):
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(
                    day=1, hour=0, minute=0, second=0
                )
            elif not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in self.minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise CronError(f"{self.expression!r} has no tick in sight")
