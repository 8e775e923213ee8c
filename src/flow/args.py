"""Turn the task words of a command line into task instances.

``TASK n=20 --n 20 --n=20 --flag --no-flag Task.param=v --Task-param v``: parameters follow the
task they belong to; ``Task.param`` (and Luigi's ``--Task-param``) set a parameter of a class for
every instance that does not pass it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import active_defaults
from .errors import ParameterError, UsageError
from .flowfile import Flowfile, find_task
from .parameter import BoolParameter, Parameter
from .task import Task, _unknown_param_message, set_class_overrides


@dataclass
class _Group:
    cls: Any
    values: dict[str, Any] = field(default_factory=dict)


def parse_tokens(tokens: list[str], flowfile: Flowfile) -> list[Task]:
    """The tasks a command line names (the default task when it names none)."""
    parser = _Parser(tokens, flowfile)
    parser.parse()
    # Configured defaults (luigi.cfg, [tool.flow.tasks]) sit under the command line's.
    set_class_overrides({**active_defaults(flowfile.tasks), **parser.overrides})
    return [g.cls(**g.values) for g in parser.groups]


class _Parser:
    """Walks the words once; parameters attach to the task named last."""

    def __init__(self, tokens: list[str], flowfile: Flowfile) -> None:
        self.tokens = tokens
        self.flowfile = flowfile
        self.pos = 0
        self.groups: list[_Group] = []
        self.overrides: dict[tuple[str, str], Any] = {}

    def parse(self) -> None:
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok.startswith("--") and len(tok) > 2:
                self._option(tok[2:])
            elif tok.startswith("-") and len(tok) > 1 and "=" not in tok:
                raise UsageError(f"unknown option {tok}; flow --help lists the options")
            elif "=" in tok:
                self._assignment(*tok.split("=", 1))
            else:
                self.groups.append(_Group(find_task(self.flowfile, tok)))
        self._current()  # no task named: the default one

    def _current(self) -> _Group:
        if not self.groups:
            default = self.flowfile.default_task
            if default is None:
                raise UsageError(f"{self.flowfile.path} defines no tasks; add a flow.Task subclass")
            self.groups.append(_Group(default))
        return self.groups[-1]

    def _option(self, body: str) -> None:
        """``--n 20``, ``--n=20``, ``--flag``, ``--no-flag``, or Luigi's ``--Task-param v``."""
        name, eq, value = body.partition("=")
        group = self._current()
        param, pname, negated = _lookup_option(group.cls, name)
        if param is not None:
            text = value if eq else self._value(name, param, negated)
            _set(group.values, pname, param.parse_cli(text, group.cls.task_family), group.cls)
            return
        target = _luigi_class_option(name, self.flowfile)
        if target is None:
            message = _unknown_param_message(group.cls, name.replace("-", "_"))
            raise ParameterError(f"{message} (from --{name})")
        cls, pname = target
        param = _param(cls, pname)
        text = value if eq else self._value(name, param, False)
        self.overrides[(cls.task_family, pname)] = param.parse_cli(text, cls.task_family)

    def _value(self, name: str, param: Parameter, negated: bool) -> str:
        """The value of ``--name``: implied for a boolean, else the next word."""
        if isinstance(param, BoolParameter):
            return "false" if negated else "true"
        if self.pos >= len(self.tokens):
            raise UsageError(
                f"--{name} needs a value ({param.expected}), e.g. --{name} {param.example}"
            )
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _assignment(self, name: str, text: str) -> None:
        """``n=20`` for the current task, or ``Task.param=value`` for a class."""
        if "." in name:
            family, _, pname = name.rpartition(".")
            cls = find_task(self.flowfile, family)
            self.overrides[(cls.task_family, pname)] = _param(cls, pname).parse_cli(
                text, cls.task_family
            )
            return
        group = self._current()
        param = _param(group.cls, name)
        _set(group.values, name, param.parse_cli(text, group.cls.task_family), group.cls)


def _param(cls: type, name: str) -> Parameter:
    params = dict(cls.get_params())  # type: ignore[attr-defined]
    if name not in params:
        raise ParameterError(_unknown_param_message(cls, name))
    return params[name]  # type: ignore[no-any-return]


def _set(values: dict[str, Any], name: str, value: Any, cls: type) -> None:
    if name in values and values[name] != value:
        raise UsageError(f"parameter '{name}' of {cls.task_family} is given twice")  # type: ignore[attr-defined]
    values[name] = value


def _lookup_option(cls: type, name: str) -> tuple[Parameter | None, str, bool]:
    """Match ``--name`` (dashes for underscores) or ``--no-name`` against a task's parameters."""
    params = dict(cls.get_params())  # type: ignore[attr-defined]
    pname = name.replace("-", "_")
    if pname in params:
        return params[pname], pname, False
    if pname.startswith("no_") and isinstance(params.get(pname[3:]), BoolParameter):
        return params[pname[3:]], pname[3:], True
    return None, pname, False


def _luigi_class_option(name: str, flowfile: Flowfile) -> tuple[Any, str] | None:
    """Luigi's ``--Task-param`` (``--examples.Task-some-param``): try each dash as the split."""
    for k in range(len(name)):
        if name[k] != "-":
            continue
        family, pname = name[:k], name[k + 1 :].replace("-", "_")
        for cls in flowfile.tasks:
            if family in (cls.task_family, cls.__name__) and pname in dict(cls.get_params()):  # type: ignore[attr-defined]
                return cls, pname
    return None
