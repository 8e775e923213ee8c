"""Luigi's ranges: ``RangeDaily``, ``RangeHourly``, ``RangeMonthly`` and ``RangeByMinutes``
require a task for every date (hour, month, minute) of a range that is not complete yet.

``flow RangeDaily --of Report --start 2026-11-01 --stop 2026-11-04`` backfills ``Report`` for
the 1st to the 3rd (``stop`` is excluded, as in Luigi), with nothing imported in the Flowfile.
A task class with a ``bulk_complete(parameter_tuples)`` classmethod answers for all dates at once.
"""

from __future__ import annotations

import datetime as _dt
import functools
import time
from typing import Any

from .errors import ParameterError
from .parameter import BoolParameter, DateParameter, DictParameter, IntParameter, Parameter
from .paramtypes import DateHourParameter, DateMinuteParameter, MonthParameter, TaskParameter
from .task import WrapperTask

__all__ = [
    "RangeBase",
    "RangeByMinutes",
    "RangeByMinutesBase",
    "RangeDaily",
    "RangeDailyBase",
    "RangeHourly",
    "RangeHourlyBase",
    "RangeMonthly",
]


class RangeBase(WrapperTask):
    """Requires ``of`` for each missing point of ``[start, stop)``, at most ``task_limit``."""

    of = TaskParameter(description="the task to complete; it takes one date/time parameter")
    of_params = DictParameter(default={}, description="more parameters for the 'of' task")
    reverse = BoolParameter(default=False, description="latest first; start may then be omitted")
    task_limit = IntParameter(default=50, description="at most this many tasks at once")
    now = IntParameter(default=None, description="the current time, in seconds since the epoch")
    param_name = Parameter(default=None, description="the 'of' parameter to set (default: first)")

    start: Any
    stop: Any
    step: _dt.timedelta = _dt.timedelta(days=1)
    back_name = "days_back"
    forward_name = "days_forward"

    def datetime_to_parameter(self, dt: _dt.datetime) -> Any:
        return dt

    def parameter_to_datetime(self, p: Any) -> _dt.datetime:
        if isinstance(p, _dt.datetime):
            return p
        return _dt.datetime(p.year, p.month, p.day)

    def moving_start(self, now: _dt.datetime) -> _dt.datetime:
        return self._align(now) - getattr(self, self.back_name) * self.step

    def moving_stop(self, now: _dt.datetime) -> _dt.datetime:
        return self._align(now) + (getattr(self, self.forward_name) + 1) * self.step

    def _align(self, dt: _dt.datetime) -> _dt.datetime:
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)

    def finite_datetimes(self, start: _dt.datetime, stop: _dt.datetime) -> list[_dt.datetime]:
        """Every point from ``start`` (aligned up) to ``stop``, ``stop`` excluded."""
        t = self._align(start)
        if t < start:
            t += self.step
        out = []
        while t < stop:
            out.append(t)
            t += self.step
        return out

    @property
    def of_cls(self) -> Any:
        return self.of

    def _param_name(self) -> str:
        if self.param_name:
            return str(self.param_name)
        return next(n for n, p in self.of.get_params() if p.positional)

    def _instantiate_task_cls(self, param: Any) -> Any:
        return self.of(**{**dict(self.of_params), self._param_name(): param})

    def requires(self) -> list[Any]:
        cached = self.__dict__.get("_cached_requires")
        if cached is None:
            cached = self.__dict__["_cached_requires"] = self._required()
        return list(cached)

    def _required(self) -> list[Any]:
        if self.start is None and self.stop is None:
            raise ParameterError(f"{self.task_family} needs --start or --stop (or both)")
        if self.start is None and not self.reverse:
            raise ParameterError(f"{self.task_family} needs --start (or --reverse)")
        if self.start is not None and self.stop is not None and self.start > self.stop:
            raise ParameterError(f"{self.task_family}: start is after stop")
        seconds = time.time() if self.now is None else self.now
        now = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).replace(tzinfo=None)
        start, stop = self.moving_start(now), self.moving_stop(now)
        if self.start is not None:
            start = max(self.parameter_to_datetime(self.start), start)
        if self.stop is not None:
            stop = min(self.parameter_to_datetime(self.stop), stop)
        points = self.finite_datetimes(start, stop) if start <= stop else []
        missing = sorted(self.missing_datetimes(points)) if points else []
        chosen = missing[-self.task_limit :] if self.reverse else missing[: self.task_limit]
        if self.reverse:
            chosen.reverse()
        return [self._instantiate_task_cls(self.datetime_to_parameter(d)) for d in chosen]

    def missing_datetimes(self, finite_datetimes: list[_dt.datetime]) -> Any:
        """The points whose task is not complete: one ``bulk_complete`` call when the task
        class has one, else each task's ``complete()``."""
        params = [self.datetime_to_parameter(d) for d in finite_datetimes]
        try:
            with_params = functools.partial(self.of, **dict(self.of_params))
            done = self.of.bulk_complete.__func__(with_params, params)
        except NotImplementedError:
            return [
                d
                for d, p in zip(finite_datetimes, params, strict=True)
                if not self._instantiate_task_cls(p).complete()
            ]
        return set(finite_datetimes) - {self.parameter_to_datetime(p) for p in done}


class RangeDailyBase(RangeBase):
    """Dates: ``start`` included, ``stop`` excluded, within ``days_back``/``days_forward`` of now."""

    start = DateParameter(default=None, description="first date, included")
    stop = DateParameter(default=None, description="last date, excluded")
    days_back = IntParameter(default=100, description="how far back from today to look")
    days_forward = IntParameter(default=0, description="how far ahead of today to look")

    def datetime_to_parameter(self, dt: _dt.datetime) -> Any:
        return dt.date()


class RangeHourlyBase(RangeBase):
    """Hours (``2026-11-01T07``): ``start`` included, ``stop`` excluded."""

    start = DateHourParameter(default=None, description="first hour, included")
    stop = DateHourParameter(default=None, description="last hour, excluded")
    hours_back = IntParameter(default=100 * 24, description="how far back from now to look")
    hours_forward = IntParameter(default=0, description="how far ahead of now to look")
    step = _dt.timedelta(hours=1)
    back_name, forward_name = "hours_back", "hours_forward"

    def _align(self, dt: _dt.datetime) -> _dt.datetime:
        return dt.replace(minute=0, second=0, microsecond=0)


class RangeByMinutesBase(RangeBase):
    """Every ``minutes_interval`` minutes: ``start`` included, ``stop`` excluded."""

    start = DateMinuteParameter(default=None, description="first minute, included")
    stop = DateMinuteParameter(default=None, description="last minute, excluded")
    minutes_back = IntParameter(default=60 * 24, description="how far back from now to look")
    minutes_forward = IntParameter(default=0, description="how far ahead of now to look")
    minutes_interval = IntParameter(default=1, description="minutes between points; divides 60")
    back_name, forward_name = "minutes_back", "minutes_forward"

    @property
    def step(self) -> _dt.timedelta:  # type: ignore[override]
        return _dt.timedelta(minutes=self.minutes_interval)

    def _align(self, dt: _dt.datetime) -> _dt.datetime:
        minute = dt.minute - dt.minute % self.minutes_interval
        return dt.replace(minute=minute, second=0, microsecond=0)


class RangeMonthly(RangeBase):
    """Months (``2026-11``): ``start`` included, ``stop`` excluded."""

    start = MonthParameter(default=None, description="first month, included")
    stop = MonthParameter(default=None, description="last month, excluded")
    months_back = IntParameter(default=13, description="how far back from this month to look")
    months_forward = IntParameter(default=0, description="how far ahead of this month to look")

    def datetime_to_parameter(self, dt: _dt.datetime) -> Any:
        return dt.date()

    def _align(self, dt: _dt.datetime) -> _dt.datetime:
        return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def moving_start(self, now: _dt.datetime) -> _dt.datetime:
        return _add_months(self._align(now), -self.months_back)

    def moving_stop(self, now: _dt.datetime) -> _dt.datetime:
        return _add_months(self._align(now), self.months_forward + 1)

    def finite_datetimes(self, start: _dt.datetime, stop: _dt.datetime) -> list[_dt.datetime]:
        t = self._align(start)
        if t < start:
            t = _add_months(t, 1)
        out = []
        while t < stop:
            out.append(t)
            t = _add_months(t, 1)
        return out


def _add_months(dt: _dt.datetime, n: int) -> _dt.datetime:
    months = dt.year * 12 + dt.month - 1 + n
    return dt.replace(year=months // 12, month=months % 12 + 1)


class RangeDaily(RangeDailyBase):
    """Requires the 'of' task for every date from start to stop (excluded) not yet complete."""


class RangeHourly(RangeHourlyBase):
    """Requires the 'of' task for every hour from start to stop (excluded) not yet complete."""


class RangeByMinutes(RangeByMinutesBase):
    """Requires the 'of' task every minutes_interval from start to stop (excluded)."""
