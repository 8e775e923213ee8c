"""The settings of one run: [tool.flow] option defaults under the command line, and
``flow --show-config``, which says where each setting came from."""

from __future__ import annotations

import json
import os
from typing import Any

from .config import NOT_YET, OPTIONS, Config, parameter_entry, parse_value
from .configfile import Entry, display
from .errors import ConfigError

# [tool.flow] name -> the click option it gives a default to (serve has none yet).
OPTION_KEYS = {
    "jobs": "jobs",
    "keep-going": "keep_going",
    "cache": "cache",
    "serve": "serve",
    "watch-exclude": "watch_exclude",
    "flowfile": "flowfile",
    "dask": "dask",
}
# Command-line options that also set a [tool.flow] setting: Luigi's --workers sets jobs;
# --module names the tasks instead of a Flowfile.
ALSO_SET_BY = {"jobs": ("workers",), "flowfile": ("module",)}
BUILT_IN: dict[str, Any] = {
    "jobs": 1,
    "keep-going": False,
    "cache": None,
    "serve": None,
    "watch-exclude": [],
    "flowfile": None,
    "dask": None,
}


def option_value(name: str, entry: Entry) -> Any:
    """A [tool.flow] value checked against the form its option takes."""
    v = entry.value
    if name == "jobs":
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
    elif name == "keep-going":
        if isinstance(v, bool):
            return v
    elif name == "watch-exclude":
        if isinstance(v, str):
            return (v,)
        if isinstance(v, list) and all(isinstance(g, str) for g in v):
            return tuple(v)
    elif name == "serve" and isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    elif isinstance(v, str) and v:
        return v
    raise ConfigError(
        f"{display(entry.where)}: bad value {v!r} for {name} in [tool.flow]: "
        f"expected {OPTIONS[name]}"
    )


def given_on_command_line(name: str, given: frozenset[str]) -> bool:
    key = OPTION_KEYS[name]
    return key in given or any(k in given for k in ALSO_SET_BY.get(name, ()))


def apply_options(config: Config, opts: dict[str, Any], given: frozenset[str]) -> None:
    """Fill the options the command line did not give from [tool.flow] (every value is checked,
    so a bad one is an error even where the command line overrides it)."""
    for name, key in OPTION_KEYS.items():
        entry = config.option(name)
        if entry is None:
            continue
        value = option_value(name, entry)
        if given_on_command_line(name, given) or key not in opts:
            continue
        if name == "flowfile":
            value = os.path.join(os.path.dirname(entry.path), value)
        elif name == "cache" and "://" not in value:  # a directory, relative to the file
            value = os.path.join(os.path.dirname(entry.path), os.path.expanduser(value))
        opts[key] = value


# -- flow --show-config ---------------------------------------------------------------------------
def show_config(config: Config, opts: dict[str, Any], given: frozenset[str], flowfile: Any) -> str:
    """The text (or, with --json, the document) that ``flow --show-config`` prints."""
    doc = describe(config, opts, given, flowfile, json_paths=opts["json_mode"])
    return render(doc, opts["json_mode"])


def describe(
    config: Config,
    opts: dict[str, Any],
    given: frozenset[str],
    flowfile: Any,
    json_paths: bool = True,
) -> dict[str, Any]:
    """Every option and configured parameter default with its value and origin, as plain data:
    ``{"files": [...], "options": {name: {value, from, line}}, "tasks": {family: {param: ...}}}``."""
    options = {}
    for name, key in OPTION_KEYS.items():
        entry = config.option(name)
        if given_on_command_line(name, given):
            value = opts.get(key)
            if name == "jobs" and opts.get("workers") is not None:
                value = opts["workers"]
            source = "FLOW_CACHE" if f"env:{key}" in given else "command line"
            options[name] = _origin(value, source)
        elif entry is not None:
            options[name] = _origin(option_value(name, entry), entry.path, entry.line)
        else:
            options[name] = _origin(BUILT_IN[name], "default")
        if name == "cache" and isinstance(options[name]["value"], str):
            from .cache.storage import shown  # a cache URL may carry user:password@ or a token

            options[name]["value"] = shown(options[name]["value"])
        if name in NOT_YET:
            options[name]["used"] = False  # shown, kept, and used once the feature lands
    options["flowfile"]["value"] = display(flowfile.path) if not json_paths else flowfile.path
    tasks: dict[str, dict[str, Any]] = {}
    for cls in flowfile.tasks:
        family = cls.task_family
        for pname, param in cls.get_params():
            entry = parameter_entry(config, family, pname, param)
            if entry is None:
                continue
            value = parse_value(entry, param, family)
            text = "***" if param.private else param.serialize(value) if value is not None else ""
            tasks.setdefault(family, {})[pname] = _origin(text, entry.path, entry.line)
    return {"files": config.files, "options": options, "tasks": tasks}


def _origin(value: Any, source: str, line: int | None = None) -> dict[str, Any]:
    if isinstance(value, tuple):
        value = list(value)
    return {"value": value, "from": source, "line": line}


def render(doc: dict[str, Any], json_mode: bool) -> str:
    """``flow --show-config``: one line per setting, its value and where it came from."""
    if json_mode:
        return json.dumps(doc, indent=2, ensure_ascii=False)
    rows = [(f"{name} = {_toml(o['value'])}", o) for name, o in doc["options"].items()]
    rows += [
        (f"{family}.{pname}={o['value']}", o)
        for family, params in doc["tasks"].items()
        for pname, o in params.items()
    ]
    width = min(max(len(text) for text, _ in rows), 50)
    lines = ["files read (later ones win):"]
    lines += [f"  {display(p)}" for p in doc["files"]] or ["  (none)"]
    lines.append("settings:")
    for text, o in rows:
        where = o["from"] if o["line"] is None else f"{o['from']}:{o['line']}"
        if o["from"] not in ("command line", "FLOW_CACHE", "default"):
            where = display(where)
        note = "  (not used yet)" if o.get("used") is False and o["from"] != "default" else ""
        lines.append(f"  {text:<{width}}  # {where}{note}")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, list)):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)
