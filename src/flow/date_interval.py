"""Date intervals as Luigi has them: a year, a month, an ISO week, a day, or a range."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator


class DateInterval:
    """A half-open range of dates ``[date_a, date_b)``, as Luigi's date intervals are."""

    __slots__ = ("date_a", "date_b", "text")

    def __init__(self, date_a: _dt.date, date_b: _dt.date, text: str | None = None) -> None:
        if date_b <= date_a:
            raise ValueError("the end date must come after the start date")
        self.date_a = date_a
        self.date_b = date_b
        self.text = text or f"{date_a.isoformat()}-{date_b.isoformat()}"

    def dates(self) -> list[_dt.date]:
        """Every date in the interval, the end excluded."""
        days = (self.date_b - self.date_a).days
        return [self.date_a + _dt.timedelta(days=i) for i in range(days)]

    def __iter__(self) -> Iterator[_dt.date]:
        return iter(self.dates())

    def __len__(self) -> int:
        return (self.date_b - self.date_a).days

    def __contains__(self, day: object) -> bool:
        return isinstance(day, _dt.date) and self.date_a <= day < self.date_b

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateInterval) and (self.date_a, self.date_b) == (
            other.date_a,
            other.date_b,
        )

    def __hash__(self) -> int:
        return hash((self.date_a, self.date_b))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"DateInterval({self.text!r})"

    @classmethod
    def parse(cls, text: str) -> DateInterval:
        """Parse ``2026``, ``2026-11``, ``2026-W47``, ``2026-11-25`` or ``2026-11-01-2026-11-08``."""
        s = text.strip()
        if m := re.fullmatch(r"(\d{4})", s):
            y = int(m[1])
            return cls(_dt.date(y, 1, 1), _dt.date(y + 1, 1, 1), s)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", s):
            y, mo = int(m[1]), int(m[2])
            start = _dt.date(y, mo, 1)
            end = _dt.date(y + (mo == 12), mo % 12 + 1, 1)
            return cls(start, end, s)
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", s):
            start = _dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return cls(start, start + _dt.timedelta(days=7), s)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            day = _dt.date.fromisoformat(s)
            return cls(day, day + _dt.timedelta(days=1), s)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})-(\d{4}-\d{2}-\d{2})", s):
            return cls(_dt.date.fromisoformat(m[1]), _dt.date.fromisoformat(m[2]), s)
        raise ValueError("not a date interval")
