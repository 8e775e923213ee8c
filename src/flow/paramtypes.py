"""The rest of Luigi's parameter types: times finer and coarser than a day, durations, task
classes, lists of choices, bounded numbers, and an Optional form of each."""

from __future__ import annotations

import ast
import datetime as _dt
import enum
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from .parameter import (
    _MISSING,
    BoolParameter,
    ChoiceParameter,
    DateParameter,
    DictParameter,
    FloatParameter,
    IntParameter,
    ListParameter,
    Parameter,
    PathParameter,
    _freeze,
)

StrParameter = Parameter  # Luigi's name for the plain string parameter


class _DateTimeParameter(Parameter):
    """A moment written with ``fmt``; values are rounded down to the format's precision."""

    fmt = "%Y-%m-%dT%H"
    accepted: tuple[str, ...] = ()  # more formats read (older spellings)
    example = "2026-11-25T07"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "a time as " + self.fmt.replace("%Y", "YYYY").replace("%m", "MM").replace(
            "%d", "DD"
        ).replace("%H", "HH").replace("%M", "MM").replace("%S", "SS")

    def parse(self, text: str) -> _dt.datetime:
        for fmt in (self.fmt, *self.accepted):
            try:
                return _dt.datetime.strptime(text.strip(), fmt)
            except ValueError:
                continue
        raise ValueError("")

    def normalize(self, value: Any) -> Any:
        value = super().normalize(value)
        if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = _dt.datetime(value.year, value.month, value.day)
        return self.parse(value.strftime(self.fmt))  # drop what the format does not hold

    def serialize(self, value: Any) -> str:
        return str(value.strftime(self.fmt))


class DateHourParameter(_DateTimeParameter):
    """A date and an hour, ``2026-11-25T07``."""


class DateMinuteParameter(_DateTimeParameter):
    """A date, hour and minute, ``2026-11-25T0730`` (Luigi's older ``2026-11-25T07H30`` too)."""

    fmt = "%Y-%m-%dT%H%M"
    accepted = ("%Y-%m-%dT%HH%M",)
    example = "2026-11-25T0730"


class DateSecondParameter(_DateTimeParameter):
    """A date and a time to the second, ``2026-11-25T073015``."""

    fmt = "%Y-%m-%dT%H%M%S"
    example = "2026-11-25T073015"


class MonthParameter(DateParameter):
    """A month, ``2026-11``; the value is the month's first day."""

    expected = "a month as YYYY-MM"
    example = "2026-11"

    def parse(self, text: str) -> _dt.date:
        return _dt.datetime.strptime(text.strip(), "%Y-%m").date()

    def normalize(self, value: Any) -> Any:
        value = super().normalize(value)
        return value.replace(day=1)

    def serialize(self, value: Any) -> str:
        return f"{value.year:04d}-{value.month:02d}"


class YearParameter(DateParameter):
    """A year, ``2026``; the value is its first day."""

    expected = "a year as YYYY"
    example = "2026"

    def parse(self, text: str) -> _dt.date:
        return _dt.date(int(text.strip()), 1, 1)

    def normalize(self, value: Any) -> Any:
        return super().normalize(value).replace(month=1, day=1)

    def serialize(self, value: Any) -> str:
        return f"{value.year:04d}"


_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_ISO = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)
_WORDS = re.compile(
    "".join(rf"(?:(?P<{u}>\d+) ?{u[0]}(?:{u[1:-1]})?s? ?)?" for u in _UNITS), re.IGNORECASE
)


class TimeDeltaParameter(Parameter):
    """A duration: seconds (``90``), ISO 8601 (``P1DT2H``) or words (``1 d 2 h``, ``3 hours``)."""

    expected = "a duration: seconds, ISO 8601 (P1DT2H) or 1 w 2 d 3 h 4 m 5 s"
    example = "P1D"

    def parse(self, text: str) -> _dt.timedelta:
        s = text.strip()
        try:
            return _dt.timedelta(seconds=float(s))
        except ValueError:
            pass
        for pattern in (_ISO, _WORDS):
            m = pattern.fullmatch(s)
            if m and any(m.groupdict().values()):
                return _dt.timedelta(**{k: int(v) for k, v in m.groupdict().items() if v})
        raise ValueError("")

    def serialize(self, value: Any) -> str:
        weeks, days = divmod(value.days, 7)
        hours, rest = divmod(value.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{weeks} w {days} d {hours} h {minutes} m {seconds} s"


class TaskParameter(Parameter):
    """A task class, given by its family name (``Report``, ``examples.Report``)."""

    expected = "a task name"
    example = "Report"

    def parse(self, text: str) -> type:
        from .task import Register

        name = text.strip()
        classes = list(reversed(Register.registry))  # a redefinition wins over the first
        for match in (
            lambda c: c.task_family == name,
            lambda c: c.__name__ == name,
            lambda c: c.task_family.lower() == name.lower(),
        ):
            found = [c for c in classes if match(c)]
            if found:
                return found[0]  # type: ignore[no-any-return]
        raise ValueError(f"no task is called {name}")

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else value

    def serialize(self, value: Any) -> str:
        return str(value.task_family)


class NumericalParameter(FloatParameter):
    """A number of ``var_type`` (float by default) in ``[min_value, max_value)``."""

    def __init__(
        self,
        default: Any = _MISSING,
        var_type: type = float,
        min_value: Any = None,
        max_value: Any = None,
        left_op: Callable[[Any, Any], bool] = operator.le,
        right_op: Callable[[Any, Any], bool] = operator.lt,
        **kwargs: Any,
    ) -> None:
        self.var_type = var_type
        self.bounds = (min_value, max_value, left_op, right_op)
        super().__init__(default=default, **kwargs)

    @property
    def expected(self) -> str:  # type: ignore[override]
        low, high, left, right = self.bounds
        if low is None and high is None:
            return f"a number ({self.var_type.__name__})"
        lo = "" if low is None else f"{low} {'<=' if left is operator.le else '<'} "
        hi = "" if high is None else f" {'<=' if right is operator.le else '<'} {high}"
        return f"a number ({self.var_type.__name__}) with {lo}value{hi}"

    def parse(self, text: str) -> Any:
        return self.normalize(self.var_type(text.strip()))

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        value = self.var_type(value)
        low, high, left, right = self.bounds
        if (low is not None and not left(low, value)) or (
            high is not None and not right(value, high)
        ):
            raise ValueError("out of range")
        return value

    def serialize(self, value: Any) -> str:
        return repr(value) if isinstance(value, float) else str(value)


class TupleParameter(ListParameter):
    """A tuple (of tuples), given as JSON (``[[1, 2], [3, 4]]``), a Python tuple
    (``((1, 2), (3, 4))``) or comma-separated values."""

    expected = "a JSON list, a tuple or comma-separated values"
    example = "[1,2]"

    def parse(self, text: str) -> tuple[Any, ...]:
        s = text.strip()
        if s.startswith("("):
            value = ast.literal_eval(s)
            return _freeze(list(value) if isinstance(value, tuple) else [value])  # type: ignore[no-any-return]
        return super().parse(text)


class ChoiceListParameter(Parameter):
    """Several of a fixed set of values, comma-separated (``a,c``); held as a tuple."""

    def __init__(self, choices: Sequence[Any] = (), var_type: type = str, **kwargs: Any) -> None:
        if not choices:
            raise TypeError("ChoiceListParameter needs choices=[...]")
        self.choices = tuple(choices)
        self.var_type = var_type
        super().__init__(**kwargs)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "comma-separated values from " + ", ".join(str(c) for c in self.choices)

    @property
    def example(self) -> str:  # type: ignore[override]
        return ",".join(str(c) for c in self.choices[:2])

    def parse(self, text: str) -> tuple[Any, ...]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return self.normalize([self.var_type(p) for p in parts])  # type: ignore[no-any-return]

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        bad = [v for v in value if v not in self.choices]
        if bad:
            raise ValueError(f"{', '.join(map(str, bad))} not among the choices")
        return tuple(value)

    def serialize(self, value: Any) -> str:
        return ",".join(str(v) for v in value)


class EnumListParameter(Parameter):
    """Members of an ``enum.Enum`` by name, comma-separated (``red,blue``); held as a tuple."""

    def __init__(self, enum: type[enum.Enum] | None = None, **kwargs: Any) -> None:
        if enum is None:
            raise TypeError("EnumListParameter needs enum=YourEnum")
        self.enum = enum
        super().__init__(**kwargs)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "comma-separated names from " + ", ".join(m.name for m in self.enum)

    @property
    def example(self) -> str:  # type: ignore[override]
        return next(iter(self.enum)).name

    def parse(self, text: str) -> tuple[Any, ...]:
        return tuple(self.enum[p.strip()] for p in text.split(",") if p.strip())

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        return tuple(v if isinstance(v, self.enum) else self.enum[v] for v in value)

    def serialize(self, value: Any) -> str:
        return ",".join(v.name for v in value)


class _Optional:
    """Mixed in first: an empty string (on the command line, in a config file) means None."""

    def parse(self, text: str) -> Any:
        return None if text == "" else super().parse(text)  # type: ignore[misc]

    def normalize(self, value: Any) -> Any:
        return None if value is None or value == "" else super().normalize(value)  # type: ignore[misc]

    def serialize(self, value: Any) -> str:
        return "" if value is None else super().serialize(value)  # type: ignore[misc]


class OptionalStrParameter(_Optional, Parameter):
    """A string or None."""


class OptionalIntParameter(_Optional, IntParameter):
    """An integer or None."""


class OptionalFloatParameter(_Optional, FloatParameter):
    """A number or None."""


class OptionalBoolParameter(_Optional, BoolParameter):
    """true, false or None."""

    def __init__(self, default: Any = None, **kwargs: Any) -> None:
        super().__init__(default=default, **kwargs)


class OptionalPathParameter(_Optional, PathParameter):
    """A path or None."""


class OptionalDictParameter(_Optional, DictParameter):
    """A JSON object or None."""


class OptionalListParameter(_Optional, ListParameter):
    """A list or None."""


class OptionalTupleParameter(_Optional, TupleParameter):
    """A tuple or None."""


class OptionalChoiceParameter(_Optional, ChoiceParameter):
    """One of the choices, or None."""


class OptionalNumericalParameter(_Optional, NumericalParameter):
    """A bounded number or None."""
