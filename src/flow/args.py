"""Turn the task words of a command line into task instances.

``TASK n=20 --n 20 --n=20 --flag --no-flag Task.param=v --Task-param v``: parameters follow the
task they belong to; ``Task.param`` (and Luigi's ``--Task-param``) set a parameter of a class for
every instance that does not pass it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    groups: list[_Group] = []
    overrides: dict[tuple[str, str], Any] = {}

    def current() -> _Group:
        if not groups:
            default = flowfile.default_task
            if default is None:
                raise UsageError(f"{flowfile.path} defines no tasks; add a flow.Task subclass")
            groups.append(_Group(default))
        return groups[-1]

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            group = current()
            param, pname, negated = _lookup_option(group.cls, name)
            if param is not None:
                if eq:
                    text = value
                elif isinstance(param, BoolParameter):
                    text = "false" if negated else "true"
                elif i < len(tokens):
                    text = tokens[i]
                    i += 1
                else:
                    raise UsageError(
                        f"--{name} needs a value ({param.expected}), e.g. --{name} {param.example}"
                    )
                _set(group.values, pname, param.parse_cli(text, group.cls.task_family), group.cls)  # type: ignore[attr-defined]
                continue
            target = _luigi_class_option(name, flowfile)
            if target is None:
                raise ParameterError(
                    _unknown_param_message(group.cls, name.replace("-", "_")) + f" (from --{name})"
                )
            cls, pname = target
            if not eq and isinstance(_param(cls, pname), BoolParameter):
                value = "true"
            elif not eq:
                if i >= len(tokens):
                    raise UsageError(f"--{name} needs a value")
                value = tokens[i]
                i += 1
            family: str = cls.task_family  # type: ignore[attr-defined]
            overrides[(family, pname)] = _param(cls, pname).parse_cli(value, family)
        elif tok.startswith("-") and len(tok) > 1 and "=" not in tok:
            raise UsageError(f"unknown option {tok}; flow --help lists the options")
        elif "=" in tok:
            name, _, value = tok.partition("=")
            if "." in name:
                family, _, pname = name.rpartition(".")
                cls = find_task(flowfile, family)
                param = _param(cls, pname)
                overrides[(cls.task_family, pname)] = param.parse_cli(value, cls.task_family)  # type: ignore[attr-defined]
                continue
            group = current()
            param = _param(group.cls, name)
            _set(group.values, name, param.parse_cli(value, group.cls.task_family), group.cls)  # type: ignore[attr-defined]
        else:
            groups.append(_Group(find_task(flowfile, tok)))
    current()
    set_class_overrides(overrides)
    return [g.cls(**g.values) for g in groups]


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


def _luigi_class_option(name: str, flowfile: Flowfile) -> tuple[type, str] | None:
    """Luigi's ``--Task-param`` (``--examples.Task-some-param``): try each dash as the split."""
    for k in range(len(name)):
        if name[k] != "-":
            continue
        family, pname = name[:k], name[k + 1 :].replace("-", "_")
        for cls in flowfile.tasks:
            if family in (cls.task_family, cls.__name__) and pname in dict(cls.get_params()):  # type: ignore[attr-defined]
                return cls, pname
    return None
