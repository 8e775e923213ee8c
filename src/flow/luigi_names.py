"""Luigi's public names and their place in flow: implemented, or left out with the flow way.

``NAMES`` is the table of ``docs/luigi.md`` (a test keeps the two, and an installed Luigi's
``luigi.__all__`` and public Task attributes, in step).
"""

from __future__ import annotations

# Names flow leaves out on purpose -> what to use instead. Reading one of them from `flow` (as
# `luigi.RemoteScheduler` after `import flow as luigi`) fails with this advice.
ABSENT = {
    "rpc": "flow has no RPC scheduler: run on a cluster with --dask ADDRESS, watch runs with --serve",
    "RemoteScheduler": "flow has no remote scheduler: run on a cluster with --dask ADDRESS, "
    "watch runs with --serve",
    "RPCError": "flow has no RPC scheduler, so no RPCError: run on a cluster with --dask ADDRESS",
    "configuration": "flow reads luigi.cfg/luigi.toml and [tool.flow] itself: use flow.Config "
    "classes for settings, and flow --show-config to see where each value came from",
    "interface": "use flow.build([...]) and flow.run() (luigi.interface's build and run)",
}

_PARAM = "parameter type, parsed on the command line and in config files"
_OPT = "Optional form: an empty value means None"
_IGNORED = "accepted; flow's scheduler has no use for it"

# name -> (status in flow, notes). Status: "yes" (Luigi's meaning), "absent" (see ABSENT).
NAMES: dict[str, tuple[str, str]] = {
    # -- luigi.__all__ ---------------------------------------------------------------------------
    "task": ("yes", "module flow.task"),
    "Task": ("yes", "the base class"),
    "Config": ("yes", "parameters from the config section of the class's name"),
    "ExternalTask": ("yes", "a missing one is reported as a missing input; exit status 1"),
    "WrapperTask": ("yes", ""),
    "namespace": ("yes", "names the task classes defined after the call"),
    "auto_namespace": ("yes", "namespace = the module's name"),
    "DynamicRequirements": ("yes", "yielded from run()"),
    "target": ("yes", "module flow.target"),
    "Target": ("yes", "exists(); fingerprint() optional, for content-based staleness"),
    "LocalTarget": ("yes", "atomic writes; format= applied (Nop opens binary)"),
    "rpc": ("absent", ABSENT["rpc"]),
    "RemoteScheduler": ("absent", ABSENT["RemoteScheduler"]),
    "RPCError": ("absent", ABSENT["RPCError"]),
    "parameter": ("yes", "module flow.parameter"),
    "Parameter": ("yes", "a string"),
    "DateParameter": ("yes", _PARAM),
    "MonthParameter": ("yes", _PARAM + " (2026-11)"),
    "YearParameter": ("yes", _PARAM + " (2026)"),
    "DateHourParameter": ("yes", _PARAM + " (2026-11-25T07)"),
    "DateMinuteParameter": ("yes", _PARAM + " (2026-11-25T0730)"),
    "DateSecondParameter": ("yes", _PARAM + " (2026-11-25T073015)"),
    "DateIntervalParameter": ("yes", _PARAM),
    "TimeDeltaParameter": ("yes", _PARAM + " (90, P1DT2H, 1 d 2 h)"),
    "StrParameter": ("yes", "same as Parameter"),
    "IntParameter": ("yes", _PARAM),
    "FloatParameter": ("yes", _PARAM),
    "BoolParameter": ("yes", "--flag, --no-flag, flag=true"),
    "PathParameter": ("yes", _PARAM),
    "TaskParameter": ("yes", "a task class, given by its name"),
    "ListParameter": ("yes", "JSON or comma-separated; held as a tuple"),
    "TupleParameter": ("yes", "JSON, a Python tuple, or comma-separated"),
    "EnumParameter": ("yes", "by member name"),
    "DictParameter": ("yes", "JSON"),
    "EnumListParameter": ("yes", "comma-separated member names"),
    "configuration": ("absent", ABSENT["configuration"]),
    "interface": ("absent", ABSENT["interface"]),
    "local_target": ("yes", "module flow.target"),
    "run": ("yes", "flow's command line from a script"),
    "build": ("yes", "truthy on success; workers= means jobs="),
    "event": ("yes", "module flow.event"),
    "Event": ("yes", "START, SUCCESS, FAILURE, PROCESSING_TIME, DEPENDENCY_MISSING/PRESENT"),
    "NumericalParameter": ("yes", "var_type, min_value, max_value checked"),
    "ChoiceParameter": ("yes", _PARAM),
    "ChoiceListParameter": ("yes", "comma-separated choices"),
    "OptionalParameter": ("yes", _OPT),
    "OptionalStrParameter": ("yes", _OPT),
    "OptionalIntParameter": ("yes", _OPT),
    "OptionalFloatParameter": ("yes", _OPT),
    "OptionalBoolParameter": ("yes", _OPT),
    "OptionalPathParameter": ("yes", _OPT),
    "OptionalDictParameter": ("yes", _OPT),
    "OptionalListParameter": ("yes", _OPT),
    "OptionalTupleParameter": ("yes", _OPT),
    "OptionalChoiceParameter": ("yes", _OPT),
    "OptionalNumericalParameter": ("yes", _OPT),
    "LuigiStatusCode": ("yes", "BuildResult.status"),
    "__version__": ("yes", "flow's version"),
    "range": ("yes", "RangeDaily, RangeHourly, RangeMonthly, RangeByMinutes"),
    # -- public Task attributes ------------------------------------------------------------------
    "Task.accepts_messages": ("yes", _IGNORED),
    "Task.batch_param_names": ("yes", _IGNORED + " (no batching)"),
    "Task.batchable": ("yes", _IGNORED + " (no batching)"),
    "Task.bulk_complete": ("yes", "used by the ranges when a class defines it"),
    "Task.clone": ("yes", ""),
    "Task.complete": ("yes", "outputs exist; overrides are honoured"),
    "Task.deps": ("yes", ""),
    "Task.disable_hard_timeout": ("yes", _IGNORED),
    "Task.disable_window": ("yes", _IGNORED),
    "Task.disable_window_seconds": ("yes", _IGNORED),
    "Task.disabled": ("yes", _IGNORED),
    "Task.event_handler": ("yes", "handlers run in the flow process, also under -j N"),
    "Task.from_str_params": ("yes", ""),
    "Task.get_param_names": ("yes", ""),
    "Task.get_param_values": ("yes", ""),
    "Task.get_params": ("yes", ""),
    "Task.get_task_family": ("yes", ""),
    "Task.get_task_namespace": ("yes", ""),
    "Task.initialized": ("yes", ""),
    "Task.input": ("yes", ""),
    "Task.max_batch_size": ("yes", _IGNORED + " (no batching)"),
    "Task.no_unpicklable_properties": ("yes", "a no-op: workers get parameters, not pickles"),
    "Task.on_failure": ("yes", "called in the process that ran the task"),
    "Task.on_success": ("yes", "called in the process that ran the task"),
    "Task.output": ("yes", ""),
    "Task.owner_email": ("yes", _IGNORED + " (use a FAILURE handler to notify)"),
    "Task.param_args": ("yes", ""),
    "Task.priority": ("yes", "among ready tasks, higher starts first; passed upstream"),
    "Task.process_resources": ("yes", "resources of one run"),
    "Task.remove_event_handler": ("yes", ""),
    "Task.requires": ("yes", "a generator too"),
    "Task.resources": ("yes", "totals from [resources] or [tool.flow.resources]; default 1"),
    "Task.retry_count": ("yes", "reruns in the same build, each attempt shown"),
    "Task.run": ("yes", "may yield dynamic dependencies"),
    "Task.task_family": ("yes", ""),
    "Task.task_module": ("yes", ""),
    "Task.task_namespace": ("yes", ""),
    "Task.to_str_params": ("yes", ""),
    "Task.trigger_event": ("yes", ""),
    "Task.use_cmdline_section": ("yes", _IGNORED),
    "Task.worker_timeout": ("yes", "the run is stopped (its process group under -j N) and fails"),
}


def absent_message(name: str) -> str:
    """The AttributeError text for ``flow.NAME``: the flow way for a name left out on purpose."""
    if name in ABSENT:
        return f"module 'flow' has no attribute {name!r}: {ABSENT[name]}"
    return f"module 'flow' has no attribute {name!r}"


def markdown_table() -> str:
    """The table of docs/luigi.md: name, status in flow, notes."""
    rows = ["| Luigi name | in flow | notes |", "| --- | --- | --- |"]
    for name, (status, notes) in NAMES.items():
        shown = "yes" if status == "yes" else "left out"
        rows.append(f"| `{name}` | {shown} | {notes} |")
    return "\n".join(rows) + "\n"
