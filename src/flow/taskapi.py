"""The rest of Luigi's Task attributes: scheduling hints, string forms of parameters, event
handlers, bulk completion. Mixed into ``flow.Task``; nothing here runs a task."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar


class BulkCompleteNotImplementedError(NotImplementedError):
    """A task class without its own ``bulk_complete``: ranges check each task instead."""


class TaskApi:
    """Luigi's public Task attributes, with Luigi's defaults."""

    #: Resources one run of the task holds, e.g. ``{"db": 1}``; totals come from ``[resources]``.
    resources: ClassVar[dict[str, int]] = {}
    #: Among tasks ready at once, a higher priority starts first.
    priority: ClassVar[int] = 0
    #: How many more times a failing run is tried in the same build (None or 0: none).
    retry_count: ClassVar[int | None] = None
    #: Seconds a run may take before its process (group) is killed and the task fails.
    worker_timeout: ClassVar[float | None] = None
    #: Accepted from Luigi and not used by flow (its scheduler's knobs, e-mail, batching).
    disabled: ClassVar[bool] = False
    owner_email: ClassVar[Any] = None
    accepts_messages: ClassVar[bool] = False
    batchable: ClassVar[bool] = False
    max_batch_size: ClassVar[float] = float("inf")
    batch_param_names: ClassVar[Callable[..., list[str]]] = classmethod(lambda cls: [])  # type: ignore[assignment]
    disable_window: ClassVar[int] = 3600
    disable_window_seconds: ClassVar[int] = 3600
    disable_hard_timeout: ClassVar[Any] = None
    use_cmdline_section: ClassVar[bool] = True

    # -- names -----------------------------------------------------------------------------------
    @classmethod
    def get_task_family(cls) -> str:
        """``namespace.Class``, or ``Class`` without a namespace."""
        return cls.task_family  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def get_task_namespace(cls) -> str:
        """The class's namespace, ``""`` when it has none."""
        return getattr(cls, "task_namespace", None) or ""

    @property
    def task_module(self) -> str:
        """The module the task class is defined in."""
        return type(self).__module__.split(".")[0]

    # -- parameters as strings -------------------------------------------------------------------
    @classmethod
    def get_param_values(
        cls, params: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[tuple[str, Any]]:
        """(name, value) of every parameter for these constructor arguments, defaults filled in."""
        return list(cls.resolve_params(tuple(args), dict(kwargs)).items())  # type: ignore[attr-defined]

    @classmethod
    def from_str_params(cls, params_str: dict[str, str]) -> Any:
        """The task for parameter values given as strings (``to_str_params()`` reversed)."""
        kwargs = {}
        for name, param in cls.get_params():  # type: ignore[attr-defined]
            if name in params_str:
                kwargs[name] = param.parse(params_str[name])
        return cls(**kwargs)

    @property
    def param_args(self) -> tuple[Any, ...]:
        """The parameter values in declaration order."""
        return tuple(self.param_kwargs[n] for n, _ in self.get_params())  # type: ignore[attr-defined]

    def initialized(self) -> bool:
        """True once the task is constructed (always, for a task you can hold)."""
        return True

    # -- scheduling ------------------------------------------------------------------------------
    def process_resources(self) -> dict[str, int]:
        """The resources this run holds: ``resources`` unless overridden."""
        return dict(self.resources)

    @classmethod
    def bulk_complete(cls, parameter_tuples: Any) -> Any:
        """Which of many parameter values are complete, in one check (ranges use it); define it
        on a task class that can answer for many dates at once."""
        raise BulkCompleteNotImplementedError()

    @contextlib.contextmanager
    def no_unpicklable_properties(self) -> Iterator[None]:
        """Luigi drops unpicklable attributes while pickling; flow ships parameters, not tasks."""
        yield

    # -- events ----------------------------------------------------------------------------------
    @classmethod
    def event_handler(cls, event: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: call the function on ``event`` for tasks of this class (and subclasses).

        It runs in the flow process: ``SUCCESS``/``START`` get the task, ``FAILURE`` the task and
        the exception, ``PROCESSING_TIME`` the task and the seconds it ran."""
        from .event import add_handler

        def register(callback: Callable[..., Any]) -> Callable[..., Any]:
            add_handler(cls, event, callback)
            return callback

        return register

    @classmethod
    def remove_event_handler(cls, event: str, callback: Callable[..., Any]) -> None:
        from .event import remove_handler

        remove_handler(cls, event, callback)

    def trigger_event(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Call the handlers of ``event`` for this task now; a handler's error is a warning."""
        import warnings

        from .event import trigger

        for problem in trigger(self, event, *args, **kwargs):
            warnings.warn(problem, stacklevel=2)
