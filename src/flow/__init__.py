"""flow: a make-like build tool with Luigi's task API. ``import flow as luigi`` ports a pipeline."""

from __future__ import annotations

from typing import Any

from .build import BuildResult
from .build import build as _build
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
    NumericalParameter,
    OptionalParameter,
    Parameter,
    PathParameter,
    TupleParameter,
)
from .shell import CommandFailed, Files, sh
from .target import FileSystemTarget, LocalTarget, Target
from .task import DynamicRequirements, ExternalTask, Task, WrapperTask

__version__ = "0.1.0"

__all__ = [
    "BoolParameter",
    "BuildResult",
    "ChoiceParameter",
    "CommandFailed",
    "DateInterval",
    "DateIntervalParameter",
    "DateParameter",
    "DictParameter",
    "DynamicRequirements",
    "EnumParameter",
    "ExternalTask",
    "FileSystemTarget",
    "Files",
    "FloatParameter",
    "IntParameter",
    "ListParameter",
    "LocalTarget",
    "NumericalParameter",
    "OptionalParameter",
    "Parameter",
    "PathParameter",
    "Target",
    "Task",
    "TupleParameter",
    "WrapperTask",
    "build",
    "run",
    "sh",
]


def build(
    tasks: Any,
    jobs: int = 1,
    dry_run: bool = False,
    force: bool = False,
    keep_going: bool = False,
    **options: Any,
) -> BuildResult:
    """Build ``tasks`` from Python (Luigi's ``luigi.build``); see :func:`flow.build.build`.

    ``local_scheduler=``, ``detailed_summary=`` and other Luigi keywords are accepted and ignored;
    ``workers=N`` means ``jobs=N``. The result is truthy when everything succeeded.
    """
    for luigi_only in (
        "local_scheduler",
        "detailed_summary",
        "scheduler_host",
        "scheduler_port",
        "log_level",
    ):
        options.pop(luigi_only, None)
    return _build(tasks, jobs=jobs, dry_run=dry_run, force=force, keep_going=keep_going, **options)


def run(argv: list[str] | None = None) -> bool:
    """Run flow's command line from a script whose tasks are in ``__main__``.

    ``python pipeline.py SquaredNumbers --n 20`` then works like ``flow -f pipeline.py ...``.
    Returns True on success (as Luigi's ``run`` does); exits with flow's status otherwise.
    """
    import sys

    from .cli import main

    try:
        main(list(sys.argv[1:] if argv is None else argv), module=sys.modules["__main__"])
    except SystemExit as exc:
        if exc.code in (0, None):
            return True
        raise
    return True
