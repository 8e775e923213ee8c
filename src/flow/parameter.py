"""Typed task parameters: parse a command-line string, validate a value, give its canonical form."""

from __future__ import annotations

import datetime as _dt
import enum
import itertools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .date_interval import DateInterval
from .errors import ParameterError

if TYPE_CHECKING:
    from pathlib import Path

_MISSING: Any = object()
_counter = itertools.count()

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


class ParameterVisibility(enum.IntEnum):
    """Who may see a parameter's value (Luigi's ``luigi.parameter.ParameterVisibility``).

    PUBLIC: everywhere. HIDDEN: left out of ``flow --list`` and completion, otherwise public.
    PRIVATE: only the task itself sees the value; it is left out of the task id and of
    everything flow prints, and ``.flow/`` keeps only a keyed hash of it for staleness.
    """

    PUBLIC = 0
    HIDDEN = 1
    PRIVATE = 2

    @classmethod
    def has_value(cls, value: object) -> bool:
        return any(value == item.value for item in cls)

    def serialize(self) -> int:
        return self.value


class Parameter:
    """A string parameter; the base of every typed parameter.

    Args:
        default: the value used when none is given; without one the parameter is required.
        description: a line of help shown by ``flow --list TASK``.
        significant: ``False`` keeps the parameter out of the task's identity and its records.
        positional: ``False`` forbids passing it as a positional constructor argument.
        visibility: a ``ParameterVisibility``; ``PRIVATE`` for secrets (see its docstring).
    """

    expected = "a string"
    example = "text"
    # Whether a value needs quotes in a task id when it holds a separator; False for parameters
    # whose text is JSON, which is self-delimiting (a list reads `items=["a","b"]`).
    quoted_in_id = True

    def __init__(
        self,
        default: Any = _MISSING,
        description: str | None = None,
        significant: bool = True,
        positional: bool = True,
        visibility: ParameterVisibility | int = ParameterVisibility.PUBLIC,
        **_ignored: Any,  # Luigi keywords flow does not use (batch_method, ...)
    ) -> None:
        self._order = next(_counter)
        self.description = description
        self.significant = significant
        self.positional = positional
        # As Luigi does, an unknown visibility counts as public.
        self.visibility = (
            ParameterVisibility(visibility)
            if ParameterVisibility.has_value(visibility)
            else ParameterVisibility.PUBLIC
        )
        # An attribute, not a property: asked for every parameter of every task of a graph.
        self.private = self.visibility == ParameterVisibility.PRIVATE
        self.name = ""
        self._default = default
        # Luigi's {"section": ..., "name": ...}: where else configuration may set this parameter.
        self.config_path = _ignored.get("config_path")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        # A task instance keeps its values in its __dict__, which wins over this (non-data)
        # descriptor; class access gives the Parameter itself.
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self)

    # -- values ---------------------------------------------------------------------------------
    @property
    def has_default(self) -> bool:
        return self._default is not _MISSING

    @property
    def default(self) -> Any:
        return self.normalize(self._default) if self.has_default else _MISSING

    def parse(self, text: str) -> Any:
        """Turn a command-line string into a value; raise ValueError on a bad form."""
        return text

    def serialize(self, value: Any) -> str:
        """The canonical string for a value: used in task ids, records and the CLI."""
        return str(value)

    def normalize(self, value: Any) -> Any:
        """Accept a value given in Python (a string is parsed as on the command line)."""
        return self.parse(value) if isinstance(value, str) else value

    def parse_cli(self, text: str, task_name: str) -> Any:
        """Parse a value typed by a user, with an error naming the parameter and the form."""
        try:
            return self.parse(text)
        except (ValueError, TypeError, KeyError) as exc:
            raise ParameterError(self.bad_value_message(text, task_name, exc)) from None

    def bad_value_message(self, value: Any, task_name: str, exc: BaseException) -> str:
        """The error for a value that does not parse; a private value is not repeated."""
        if self.private:  # the value, and the exception's text that may quote it, stay unsaid
            return (
                f"bad value for private parameter '{self.name}' of {task_name}: "
                f"expected {self.expected}"
            )
        hint = f" ({exc})" if str(exc) and not isinstance(exc, KeyError) else ""
        return (
            f"bad value {value!r} for parameter '{self.name}' of {task_name}: "
            f"expected {self.expected}{hint}, e.g. {self.name}={self.example}"
        )

    def type_name(self) -> str:
        """The short type shown in listings: str, int, date, choice, ..."""
        return type(self).__name__.removesuffix("Parameter").lower() or "str"


class OptionalParameter(Parameter):
    """A string parameter whose value may be None (given as an empty string on the command line)."""

    def parse(self, text: str) -> Any:
        return text or None

    def serialize(self, value: Any) -> str:
        return "" if value is None else str(value)


class IntParameter(Parameter):
    """An integer."""

    expected = "an integer"
    example = "20"

    def parse(self, text: str) -> int:
        return int(text.strip().replace("_", ""))

    def normalize(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        return super().normalize(value)


class FloatParameter(Parameter):
    """A floating-point number."""

    expected = "a number"
    example = "0.5"

    def parse(self, text: str) -> float:
        return float(text)

    def normalize(self, value: Any) -> Any:
        value = super().normalize(value)
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def serialize(self, value: Any) -> str:
        return repr(float(value))


class BoolParameter(Parameter):
    """A boolean: ``flag=true``, ``--flag`` or ``--no-flag``. Defaults to False."""

    expected = "true or false"
    example = "true"

    def __init__(self, default: Any = False, **kwargs: Any) -> None:
        super().__init__(default=default, **kwargs)

    def parse(self, text: str) -> bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("")

    def serialize(self, value: Any) -> str:
        return "true" if value else "false"


class DateParameter(Parameter):
    """A calendar date in ISO form, ``2026-11-25``."""

    expected = "a date as YYYY-MM-DD"
    example = "2026-11-25"

    def parse(self, text: str) -> _dt.date:
        return _dt.date.fromisoformat(text.strip())

    def normalize(self, value: Any) -> Any:
        value = super().normalize(value)
        return value.date() if isinstance(value, _dt.datetime) else value

    def serialize(self, value: Any) -> str:
        return value.isoformat()


class DateIntervalParameter(Parameter):
    """A date interval: a year, a month, an ISO week, a day, or ``START-END`` with END excluded."""

    expected = "a year, month, ISO week, date, or START-END (2026, 2026-11, 2026-W47, 2026-11-25, 2026-11-01-2026-11-08)"
    example = "2026-11"

    def parse(self, text: str) -> DateInterval:
        return DateInterval.parse(text)

    def serialize(self, value: Any) -> str:
        return str(value)


class ChoiceParameter(Parameter):
    """One of a fixed set of values (strings unless ``var_type`` says otherwise)."""

    def __init__(self, choices: Sequence[Any] = (), var_type: type = str, **kwargs: Any) -> None:
        if not choices:
            raise TypeError("ChoiceParameter needs choices=[...]")
        self.choices = tuple(choices)
        self.var_type = var_type
        super().__init__(**kwargs)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(str(c) for c in self.choices)

    @property
    def example(self) -> str:  # type: ignore[override]
        return str(self.choices[0])

    def parse(self, text: str) -> Any:
        value = self.var_type(text)
        return self.normalize(value)

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str) and self.var_type is not str:
            value = self.var_type(value)
        if value not in self.choices:
            raise ValueError(f"{value!r} is not one of the choices")
        return value


class EnumParameter(Parameter):
    """A member of an ``enum.Enum``, given by name."""

    def __init__(self, enum: type[enum.Enum] | None = None, **kwargs: Any) -> None:
        if enum is None:
            raise TypeError("EnumParameter needs enum=YourEnum")
        self.enum = enum
        super().__init__(**kwargs)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(m.name for m in self.enum)

    @property
    def example(self) -> str:  # type: ignore[override]
        return next(iter(self.enum)).name

    def parse(self, text: str) -> enum.Enum:
        try:
            return self.enum[text]
        except KeyError:
            for member in self.enum:
                if member.name.lower() == text.lower():
                    return member
            raise ValueError(f"{text!r} is not a member") from None

    def normalize(self, value: Any) -> Any:
        if isinstance(value, self.enum):
            return value
        if isinstance(value, str):
            return self.parse(value)
        return self.enum(value)

    def serialize(self, value: Any) -> str:
        return value.name


def _freeze(value: Any) -> Any:
    """Lists become tuples and dicts become sorted item tuples, so values can key the task cache."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return _FrozenDict((k, _freeze(v)) for k, v in value.items())
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


class _FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that can be hashed, for DictParameter values."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: str(kv[0]))))


class ListParameter(Parameter):
    """A list, given as JSON (``[1, 2]``) or comma-separated (``a,b``); held as a tuple."""

    quoted_in_id = False
    expected = "a JSON list or comma-separated values ([1, 2] or a,b)"
    example = "a,b"

    def parse(self, text: str) -> tuple[Any, ...]:
        s = text.strip()
        if s.startswith("["):
            value = json.loads(s)
            if not isinstance(value, list):
                raise ValueError("not a list")
            return _freeze(value)
        return tuple(part.strip() for part in s.split(",")) if s else ()

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        return _freeze(list(value))

    def serialize(self, value: Any) -> str:
        return json.dumps(_thaw(value), separators=(",", ":"), default=str)


class DictParameter(Parameter):
    """A dict, given as JSON."""

    quoted_in_id = False
    expected = 'a JSON object, e.g. {"a": 1}'
    example = '{"a":1}'

    def parse(self, text: str) -> Any:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return _freeze(value)

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else _freeze(dict(value))

    def serialize(self, value: Any) -> str:
        return json.dumps(_thaw(value), sort_keys=True, separators=(",", ":"), default=str)


class PathParameter(Parameter):
    """A filesystem path (a ``pathlib.Path``); relative paths are relative to the Flowfile."""

    expected = "a path"
    example = "data/input.csv"

    def parse(self, text: str) -> Path:
        if not text:
            raise ValueError("empty path")
        return self.normalize(text)  # type: ignore[no-any-return]

    def normalize(self, value: Any) -> Any:
        from pathlib import Path  # imported when used: pathlib costs ~4 ms of every start

        return Path(value)

    def serialize(self, value: Any) -> str:
        return str(value)
