"""flow: a make-like build tool with Luigi's task API. ``import flow as luigi`` ports a pipeline."""

from __future__ import annotations

from ._version import __version__ as __version__

# Neither typing nor importlib at import time: `import flow` runs on every Tab (entry.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Public names and the module each lives in. They are imported on first use (PEP 562), so that
# `flow --version` and every shell-completion Tab import click and the CLI module, nothing more.
_LAZY = {
    "BuildResult": "spine",
    "CommandFailed": "shell",
    "Files": "shell",
    "sh": "shell",
    "FileSystemTarget": "target",
    "FTPTarget": "remote",
    "RemoteTarget": "remote",
    "S3Target": "remote",
    "target_for": "remote",
    "LocalTarget": "target",
    "Target": "target",
    "Config": "task",
    "DynamicRequirements": "task",
    "ExternalTask": "task",
    "Event": "event",
    "LuigiStatusCode": "runstatus",
    "namespace": "namespaces",
    "auto_namespace": "namespaces",
    "Task": "task",
    "WrapperTask": "task",
    **dict.fromkeys(
        (
            "BoolParameter",
            "ChoiceParameter",
            "DateInterval",
            "DateIntervalParameter",
            "DateParameter",
            "DictParameter",
            "EnumParameter",
            "FloatParameter",
            "IntParameter",
            "ListParameter",
            "OptionalParameter",
            "Parameter",
            "PathParameter",
        ),
        "parameter",
    ),
    **dict.fromkeys(
        (
            "ChoiceListParameter",
            "DateHourParameter",
            "DateMinuteParameter",
            "DateSecondParameter",
            "EnumListParameter",
            "MonthParameter",
            "NumericalParameter",
            "OptionalBoolParameter",
            "OptionalChoiceParameter",
            "OptionalDictParameter",
            "OptionalFloatParameter",
            "OptionalIntParameter",
            "OptionalListParameter",
            "OptionalNumericalParameter",
            "OptionalPathParameter",
            "OptionalStrParameter",
            "OptionalTupleParameter",
            "StrParameter",
            "TaskParameter",
            "TimeDeltaParameter",
            "TupleParameter",
            "YearParameter",
        ),
        "paramtypes",
    ),
}

# Submodules reachable as attributes, as Luigi's are (`luigi.format.Nop`, `luigi.mock.MockTarget`);
# Luigi's module names that are flow modules under another name map to those.
_MODULES = {
    "format": "format",
    "mock": "mock",
    "range": "range",
    "event": "event",
    "parameter": "parameter",
    "target": "target",
    "local_target": "target",
    "task": "task",
    "tools": "tools",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import event, parameter, range, target, task
    from . import format as format
    from . import mock as mock
    from . import target as local_target
    from .event import Event
    from .namespaces import auto_namespace, namespace
    from .parameter import (
        BoolParameter,
        ChoiceParameter,
        DateInterval,
        DateIntervalParameter,
        DateParameter,
        DictParameter,
        EnumParameter,
        FloatParameter,
        IntParameter,
        ListParameter,
        OptionalParameter,
        Parameter,
        PathParameter,
    )
    from .paramtypes import (
        ChoiceListParameter,
        DateHourParameter,
        DateMinuteParameter,
        DateSecondParameter,
        EnumListParameter,
        MonthParameter,
        NumericalParameter,
        OptionalBoolParameter,
        OptionalChoiceParameter,
        OptionalDictParameter,
        OptionalFloatParameter,
        OptionalIntParameter,
        OptionalListParameter,
        OptionalNumericalParameter,
        OptionalPathParameter,
        OptionalStrParameter,
        OptionalTupleParameter,
        StrParameter,
        TaskParameter,
        TimeDeltaParameter,
        TupleParameter,
        YearParameter,
    )
    from .remote import FTPTarget, RemoteTarget, S3Target, target_for
    from .runstatus import LuigiStatusCode
    from .shell import CommandFailed, Files, sh
    from .spine import BuildResult
    from .target import FileSystemTarget, LocalTarget, Target
    from .task import Config, DynamicRequirements, ExternalTask, Task, WrapperTask


def _import(relative: str) -> Any:
    from importlib import import_module

    return import_module(relative, __name__)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = _import(f".{_MODULES[name]}")
        globals()[name] = value
        return value
    try:
        module = _LAZY[name]
    except KeyError:
        from .luigi_names import absent_message

        raise AttributeError(absent_message(name)) from None
    value = getattr(_import(f".{module}"), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = [
    "BoolParameter",
    "BuildResult",
    "ChoiceListParameter",
    "ChoiceParameter",
    "CommandFailed",
    "Config",
    "DateHourParameter",
    "DateInterval",
    "DateIntervalParameter",
    "DateMinuteParameter",
    "DateParameter",
    "DateSecondParameter",
    "DictParameter",
    "DynamicRequirements",
    "EnumListParameter",
    "EnumParameter",
    "Event",
    "ExternalTask",
    "FTPTarget",
    "FileSystemTarget",
    "Files",
    "FloatParameter",
    "IntParameter",
    "ListParameter",
    "LocalTarget",
    "local_target",
    "LuigiStatusCode",
    "MonthParameter",
    "NumericalParameter",
    "OptionalBoolParameter",
    "OptionalChoiceParameter",
    "OptionalDictParameter",
    "OptionalFloatParameter",
    "OptionalIntParameter",
    "OptionalListParameter",
    "OptionalNumericalParameter",
    "OptionalParameter",
    "OptionalPathParameter",
    "OptionalStrParameter",
    "OptionalTupleParameter",
    "Parameter",
    "PathParameter",
    "RemoteTarget",
    "S3Target",
    "StrParameter",
    "Target",
    "Task",
    "TaskParameter",
    "TimeDeltaParameter",
    "TupleParameter",
    "WrapperTask",
    "YearParameter",
    "auto_namespace",
    "build",
    "event",
    "namespace",
    "parameter",
    "range",
    "run",
    "sh",
    "target_for",
    "target",
    "task",
]


def build(
    tasks: Any,
    jobs: int = 1,
    dry_run: bool = False,
    force: bool = False,
    keep_going: bool = False,
    **options: Any,
) -> BuildResult:
    """Build ``tasks`` and what they require, running only what is stale (Luigi's ``luigi.build``).

    Paths and ``.flow/`` are relative to the current directory: run it from the project. A
    failing task does not raise; the result says it failed.

    Args:
        tasks: a task, or a list of tasks.
        jobs: run up to this many tasks at once, as ``-j``; with more than one, ``run()``
            methods execute in worker processes. ``workers=`` is accepted as a synonym.
        dry_run: plan only, as ``-n``: nothing runs and nothing is written.
        force: rebuild the tasks and everything upstream of them, as ``-B``.
        keep_going: after a failure, run what does not depend on it, as ``-k``.
        **options: ``check=True`` (``--check``), ``touch=True`` (``-t``), ``explain=True``,
            ``dask="local:2"`` (``--dask``), ``cache="DIR-or-URL"`` (``--cache``),
            ``reporter=`` (where output goes), ``subscribers=`` (listeners to the build's
            events) and ``backend=``. Luigi's ``local_scheduler``, ``detailed_summary``,
            ``scheduler_host``, ``scheduler_port`` and ``log_level`` are accepted and ignored.

    Returns:
        A ``BuildResult``: truthy when everything requested is up to date or was built.

    Raises:
        flow.errors.GraphError: a dependency cycle, or two tasks declaring one output.
        flow.errors.ParameterError: a bad parameter value.
    """
    from .spine import build as _build

    for luigi_only in (
        "local_scheduler",
        "detailed_summary",
        "scheduler_host",
        "scheduler_port",
        "log_level",
    ):
        options.pop(luigi_only, None)
    return _build(tasks, jobs=jobs, dry_run=dry_run, force=force, keep_going=keep_going, **options)


def _in_worker_import() -> bool:
    """True while a worker process imports the user's script: multiprocessing's spawn imports
    it as ``__mp_main__``, and a flow worker imports it again to rebuild tasks."""
    import sys

    if "__mp_main__" in sys.modules:  # a multiprocessing child (spawn) runs the main script
        return True
    worker = sys.modules.get("flow.backends.worker")
    return worker is not None and bool(worker.importing)


def run(argv: list[str] | None = None) -> bool:
    """Run flow's command line from a script whose tasks are in ``__main__`` (Luigi's ``luigi.run``).

    ``python pipeline.py SquaredNumbers --n 20`` then works like
    ``flow -f pipeline.py SquaredNumbers --n 20``, from any directory. Call it under
    ``if __name__ == "__main__":``, since ``-j`` worker processes import the script again.

    Args:
        argv: the command line without the program name; ``sys.argv[1:]`` by default.

    Returns:
        True on success, as Luigi's ``run`` does. Otherwise it exits with flow's exit status.
    """
    import sys

    from .cli import main

    if _in_worker_import():
        sys.stderr.write(
            "flow: error: flow.run() was called while a -j worker process imported "
            f"{getattr(sys.modules.get('__mp_main__'), '__file__', 'the script')}; put the call "
            'under `if __name__ == "__main__":`\n'
        )
        sys.exit(2)
    try:
        main(list(sys.argv[1:] if argv is None else argv), module=sys.modules["__main__"])
    except SystemExit as exc:
        if exc.code in (0, None):
            return True
        raise
    return True
