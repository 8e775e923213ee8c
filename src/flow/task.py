"""Task classes: identity by class and parameters, task ids, requires/output/input, complete()."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar

from .errors import ParameterError
from .namespaces import for_module
from .parameter import _MISSING, Parameter, ParameterVisibility
from .taskapi import TaskApi

# Parameter values set on the command line for a class (`Task.param=value`): they replace the
# default wherever that class is instantiated without the parameter, as Luigi's --Task-param does.
_class_overrides: dict[tuple[str, str], Any] = {}

# The task whose run() is executing, and whether several run at once (set by the executor);
# make-style helpers such as flow.sh read them to format paths and prefix echoed commands.
RUNNING: ContextVar[Task | None] = ContextVar("flow_running_task", default=None)
PARALLEL: ContextVar[bool] = ContextVar("flow_parallel", default=False)


def current_task() -> Task | None:
    """The task whose ``run()`` is executing in this process, or None outside a run."""
    return RUNNING.get()


def set_class_overrides(overrides: dict[tuple[str, str], Any]) -> None:
    """Replace the command-line defaults for (task family, parameter name) pairs."""
    _class_overrides.clear()
    _class_overrides.update(overrides)
    Register.clear_instance_cache()


class _computed_once:  # noqa: N801 - used as a decorator, like property
    """Like ``property``, computed on first use and then stored on the instance, so later reads
    are plain attribute lookups (a 10,000-task graph reads ``task_id`` some 100,000 times)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


class Register(type):
    """Metaclass: keeps every Task class in definition order and returns one instance per
    (class, parameter values), so ``Foo(n=3) is Foo(n=3)``."""

    registry: ClassVar[list[type]] = []
    _instances: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> Register:
        cls = super().__new__(mcs, name, bases, ns)
        params = []
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Parameter):
                    params.append((attr, value))
        # Later definitions (in a subclass) replace earlier ones of the same name.
        by_name = dict(params)
        cls._params = sorted(by_name.items(), key=lambda kv: kv[1]._order)  # type: ignore[attr-defined]
        cls._param_names = frozenset(by_name)  # type: ignore[attr-defined]
        cls._positional = [n for n, p in cls._params if p.positional]  # type: ignore[attr-defined]
        # namespace()/auto_namespace() name the classes defined after them (flow's own aside).
        if "task_namespace" not in ns and getattr(cls, "task_namespace", None) is None:
            if not cls.__module__.startswith("flow.") and (space := for_module(cls.__module__)):
                cls.task_namespace = space  # type: ignore[attr-defined]
        Register.registry.append(cls)
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        values = cls.resolve_params(args, kwargs)  # type: ignore[attr-defined]
        key = (cls, *values.values())  # one tuple: 100,000 tasks keep 100,000 keys
        try:
            return Register._instances[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: no sharing, but still a valid task
            key = None  # type: ignore[assignment]
        instance: Any = object.__new__(cls)  # type: ignore[arg-type]
        for name, value in values.items():
            setattr(instance, name, value)
        instance.param_kwargs = values
        instance.__init__(*args, **kwargs)
        if key is not None:
            Register._instances[key] = instance
        return instance

    @classmethod
    def clear_instance_cache(mcs) -> None:
        mcs._instances.clear()

    @property
    def task_family(cls) -> str:
        ns = getattr(cls, "task_namespace", None)
        return f"{ns}.{cls.__name__}" if ns else cls.__name__


class Task(TaskApi, metaclass=Register):
    """A unit of work with typed parameters, upstream requirements and output targets.

    Subclass it and define ``requires()``, ``output()`` and ``run()``; declare parameters as class
    attributes. A class attribute ``version`` changes the task's code hash by hand.
    """

    task_namespace: ClassVar[str | None] = None
    version: ClassVar[Any] = None
    _params: ClassVar[list[tuple[str, Parameter]]]
    param_kwargs: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Parameters are already set by the metaclass; subclasses may extend this."""

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def get_params(cls) -> list[tuple[str, Parameter]]:
        """The (name, Parameter) pairs of this class in declaration order."""
        return list(cls._params)

    @classmethod
    def get_param_names(cls, include_significant: bool = False) -> list[str]:
        """Parameter names; insignificant ones too when ``include_significant`` is true (Luigi's flag)."""
        return [n for n, p in cls._params if include_significant or p.significant]

    @classmethod
    def resolve_params(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Match positional and keyword arguments, defaults and overrides to parameter values."""
        family: str = cls.task_family  # type: ignore[assignment]
        given: dict[str, Any] = kwargs
        if args:
            positional = cls._positional  # type: ignore[attr-defined]
            if len(args) > len(positional):
                raise ParameterError(
                    f"{family} takes {len(positional)} positional parameter(s) but {len(args)} "
                    "were given"
                )
            given = dict(zip(positional, args, strict=False))
            for name, value in kwargs.items():
                if name in given:
                    raise ParameterError(f"{family} got parameter '{name}' twice")
                given[name] = value
        if not cls._param_names.issuperset(given):  # type: ignore[attr-defined]
            unknown = next(n for n in given if n not in cls._param_names)  # type: ignore[attr-defined]
            raise ParameterError(_unknown_param_message(cls, unknown))
        values: dict[str, Any] = {}
        overrides = _class_overrides
        for name, param in cls._params:
            if name in given:
                raw = given[name]
            elif overrides and (family, name) in overrides:
                raw = overrides[(family, name)]
            elif param._default is not _MISSING:
                raw = param._default
            else:
                raise ParameterError(
                    f"missing parameter '{name}' for {family}: pass {name}=VALUE "
                    f"({param.expected}), or give it a default"
                )
            try:
                values[name] = raw if raw is None else param.normalize(raw)
            except (ValueError, TypeError, KeyError) as exc:
                raise ParameterError(param.bad_value_message(raw, family, exc)) from None
        return values

    def to_str_params(
        self, only_significant: bool = True, only_public: bool = False
    ) -> dict[str, str]:
        """Parameter values as canonical strings: significant ones only by default, public ones
        only with ``only_public``, and never a private one (Luigi's rule)."""
        if only_significant and not only_public:  # the common case: the shape of the task id
            shape = _ID_SHAPE.get(type(self))
            if shape is None or shape is _CUSTOM:
                shape = _id_shape(type(self), own=True)
            values = self.param_kwargs
            return {
                name: "" if values[name] is None else serialize(values[name])
                for name, serialize, _ in shape
            }
        out = {}
        for name, param in self._params:
            if (only_significant and not param.significant) or param.private:
                continue
            if only_public and param.visibility != ParameterVisibility.PUBLIC:
                continue
            value = self.param_kwargs[name]
            out[name] = "" if value is None else param.serialize(value)
        return out

    @property
    def task_family(self) -> str:
        return type(self).task_family  # type: ignore[return-value]

    @_computed_once
    def task_id(self) -> str:
        """``Family(a=1, b=x)``: the class and its significant parameter values, private ones
        left out (as Luigi's ids leave them out; hidden ones stay, so they still tell tasks apart).

        A value that could be misread (one holding ``, = ( )``, quotes, a backslash, a line break,
        space at an end, or nothing at all) is written in double quotes with JSON escapes, so two
        different tasks never share an id: ``Label(first="Ann, last=Lee", last=x)``.
        """
        cls = type(self)
        shape = _ID_SHAPE.get(cls)
        if shape is None:  # once per class: ids are made for every task of a big graph
            shape = _id_shape(cls)
        if shape is _CUSTOM:  # a subclass with its own to_str_params()
            quoted = {k: p.quoted_in_id for k, p in self._params}
            items = self.to_str_params().items()
            body = ", ".join(f"{k}={_id_value(v) if quoted[k] else v}" for k, v in items)
            return f"{self.task_family}({body})"
        values = self.param_kwargs
        parts = []
        for name, serialize, quoted in shape:
            value = values[name]
            text = "" if value is None else serialize(value)
            parts.append(f"{name}={_id_value(text)}" if quoted else f"{name}={text}")
        return f"{self.task_family}({', '.join(parts)})"

    def __repr__(self) -> str:
        return self.task_id

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Task) and self.task_id == other.task_id)

    def __hash__(self) -> int:
        return hash(self.task_id)

    def set_status_message(self, message: str) -> None:
        """Say what ``run()`` is doing now: shown on the status line and in the visualiser."""
        from .progress import report

        report(self.task_id, message=message)

    def set_progress_percentage(self, percentage: float) -> None:
        """Say how far ``run()`` is, from 0 to 100 (Luigi's name)."""
        from .progress import report

        report(self.task_id, percentage=percentage)

    def set_tracking_url(self, url: str) -> None:
        """Where to follow the work outside flow (Luigi's name): shown as the status message."""
        self.set_status_message(f"tracking: {url}")

    def clone(self, cls: type | None = None, **overrides: Any) -> Task:
        """A task of ``cls`` (default: this class) with the parameters it shares with this one."""
        cls = cls or type(self)
        kwargs = {n: self.param_kwargs[n] for n, _ in cls.get_params() if n in self.param_kwargs}  # type: ignore[attr-defined]
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[no-any-return]

    # -- the user's side --------------------------------------------------------------------
    def requires(self) -> Any:
        """The tasks this one needs: None, a task, or a list/tuple/dict of tasks."""
        return []

    def output(self) -> Any:
        """The targets this task produces: None, a Target, or a list/tuple/dict of Targets."""
        return None

    def run(self) -> Any:
        """Do the work. May ``yield`` tasks as dynamic dependencies."""

    def input(self) -> Any:
        """The outputs of ``requires()``, in the same shape."""
        return map_structure(lambda t: t.output(), self.requires())

    def complete(self) -> bool:
        """True when every output exists. A task with no outputs is never complete (phony)."""
        outputs = flatten(self.output())
        return bool(outputs) and all(t.exists() for t in outputs)

    def deps(self) -> list[Task]:
        """The flattened list of required tasks."""
        return [t for t in flatten(self.requires()) if t is not None]

    # Luigi's event hooks, accepted so ported pipelines import cleanly.
    def on_success(self) -> Any:
        return None

    def on_failure(self, exception: BaseException) -> Any:
        return None


class Config(Task):
    """Settings as a task class: its parameters come from the config section of its name
    (``[MyConfig]`` in luigi.cfg, ``[tool.flow.tasks.MyConfig]``). Read ``MyConfig().value``."""


class WrapperTask(Task):
    """A task that only groups others: complete when everything it requires is complete."""

    def complete(self) -> bool:
        return all(t.complete() for t in self.deps())


class ExternalTask(Task):
    """Data made outside flow: never run; its outputs must already exist."""

    run = None  # type: ignore[assignment]


def is_external(task: Task) -> bool:
    """True for a task flow never runs: an ExternalTask, or any task without a ``run()``."""
    return isinstance(task, ExternalTask) or getattr(task, "run", None) is None


class DynamicRequirements:
    """Tasks yielded from ``run()`` with an optional ``custom_complete(complete_fn)`` check."""

    def __init__(self, requirements: Any, custom_complete: Any = None) -> None:
        self.requirements = requirements
        self.custom_complete = custom_complete
        self.flat_requirements = [t for t in flatten(requirements) if t is not None]

    def complete(self, complete_fn: Any = None) -> bool:
        complete_fn = complete_fn or (lambda t: t.complete())
        if self.custom_complete is not None:
            return bool(self.custom_complete(complete_fn))
        return all(complete_fn(t) for t in self.flat_requirements)


def flatten(struct: Any) -> list[Any]:
    """The leaves of None, a single item, a list/tuple/dict or a generator of items."""
    if struct is None:
        return []
    kind = _LEAF.get(type(struct))
    if kind is None:
        kind = _LEAF[type(struct)] = _is_leaf_type(type(struct))
    if kind:  # a single task or target, the commonest answer
        return [struct]
    if type(struct) is list and all(_LEAF.get(type(item)) for item in struct):
        return list(struct)  # a flat list of tasks or targets: nothing to walk
    if isinstance(struct, dict):
        struct = struct.values()
    elif not isinstance(
        struct, (list, tuple, set, frozenset, Iterator)
    ) and not inspect.isgenerator(struct):
        return [struct]
    out: list[Any] = []
    stack: list[Iterator[Any]] = [iter(struct)]
    while stack:  # iterative: nesting depth is the user's, not bounded by recursion
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(item, dict):
            stack.append(iter(item.values()))
        elif isinstance(item, (list, tuple, set, frozenset)) or inspect.isgenerator(item):
            stack.append(iter(item))
        elif item is not None:
            out.append(item)
    return out


_LEAF: dict[type, bool] = {}  # type -> is a value of it a leaf of flatten() (never a generator)


def _is_leaf_type(cls: type) -> bool:
    """Values of ``cls`` are leaves: not None, a container, an iterator or a generator."""
    # Iterator covers generators; it is structural (``__next__``), so it is asked per type.
    return not issubclass(cls, (dict, list, tuple, set, frozenset, Iterator, type(None)))


def map_structure(fn: Any, struct: Any) -> Any:
    """Apply ``fn`` to the leaves of a requires()/output() structure, keeping its shape."""
    if struct is None:
        return None
    if isinstance(struct, dict):
        return {k: map_structure(fn, v) for k, v in struct.items()}
    if isinstance(struct, tuple):
        return tuple(map_structure(fn, v) for v in struct)
    if isinstance(struct, (list, Iterable)) and not isinstance(struct, (str, bytes, Task)):
        return [map_structure(fn, v) for v in struct]
    return fn(struct)


# Characters that would make an unquoted value ambiguous inside ``Family(a=..., b=...)``.
_ID_SPECIAL = re.compile(r"[,=()\"'\\\n\r\t\x00-\x1f\x7f]|^\s|\s$")


# task class -> (name, serialize, quoted) of the parameters its id shows, or _CUSTOM.
_ID_SHAPE: dict[type, Any] = {}
_CUSTOM = object()


def _id_shape(cls: Any, own: bool = False) -> Any:
    """What a task id of ``cls`` is made of: its significant, non-private parameters in order
    (``own``: for Task.to_str_params itself, whatever a subclass overrides; not remembered)."""
    if not own and cls.to_str_params is not Task.to_str_params:
        return _CUSTOM
    shape = [
        (name, p.serialize, p.quoted_in_id)
        for name, p in cls._params
        if p.significant and not p.private
    ]
    if not own:
        _ID_SHAPE[cls] = shape
    return shape


def _id_value(text: str) -> str:
    """A parameter value as written in a task id: plain, or JSON-quoted when it could be misread."""
    if text and not _ID_SPECIAL.search(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _unknown_param_message(cls: type, name: str) -> str:
    import difflib

    names = [n for n, _ in cls._params]  # type: ignore[attr-defined]
    family = cls.task_family  # type: ignore[attr-defined]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    known = (
        f" ({family} takes: {', '.join(names)})" if names else f" ({family} takes no parameters)"
    )
    return f"unknown parameter '{name}' for {family}{hint}{known}"
