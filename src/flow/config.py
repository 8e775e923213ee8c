"""Configuration files: option and parameter defaults, their precedence, and where each came from.

Parameter defaults, lowest precedence first (the command line beats them all):

1. ``/etc/luigi/luigi.cfg``, ``/etc/luigi/luigi.toml`` (the machine's)
2. ``luigi.cfg``, ``luigi.toml`` beside the Flowfile, then in the current directory
3. flow's own file: ``[tool.flow.tasks.NAME]`` in pyproject.toml, or ``[tasks.NAME]`` in flow.toml
4. the file named by ``LUIGI_CONFIG_PATH`` (chosen for this run, so it beats the project's files)

Option defaults (``jobs``, ``keep-going``, ...) come from flow's file alone.
"""

from __future__ import annotations

import os

from .errors import ConfigError, ParameterError

# typing is not imported at run time: this module is on the path of every Tab (entry.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .configfile import Entry, Source

# Reading a file (configfile.py, tomllib, configparser) is imported only once one exists: a
# project without configuration pays a few stat calls and this module, nothing more.

SYSTEM_DIR = "/etc/luigi"
LUIGI_NAMES = ("luigi.cfg", "luigi.toml")
FLOW_NAMES = ("flow.toml", "pyproject.toml")

# flow's option defaults in [tool.flow], with the form each expects.
OPTIONS = {
    "jobs": "a whole number, 0 for one per CPU",
    "keep-going": "true or false",
    "cache": "a URL or a directory",
    "serve": "[HOST:]PORT",
    "history": "a whole number of runs to keep (at least 1)",
    "watch-exclude": "a list of globs",
    "flowfile": "a path, relative to the configuration file",
    "resources": "a table of resource totals, e.g. [tool.flow.resources] with db = 1",
    "dask": "a scheduler address (tcp://HOST:PORT), local or local:N",
}
# Accepted and shown by --show-config, used once their features land (none now).
NOT_YET: tuple[str, ...] = ()


class Config:
    """The configuration files found for one run: flow's own, and the parameter-default files
    in precedence order (lowest first)."""

    def __init__(
        self, flow: Source | None = None, origin: tuple[str, str, str] | None = None
    ) -> None:
        self.flow = flow
        self.sources: list[Source] = []
        self.warnings: list[str] = []
        # Where the files were looked for: (start, Flowfile's directory, invocation directory).
        self.origin = origin

    @property
    def files(self) -> list[str]:
        """Every file read, lowest precedence first."""
        paths = [s.path for s in self.sources]
        if self.flow is not None and self.flow.path not in paths:
            paths.append(self.flow.path)
        return paths

    def option(self, name: str) -> Entry | None:
        """flow's option default ``name`` (``keep-going``; ``keep_going`` is accepted too)."""
        if self.flow is None:
            return None
        for key, entry in self.flow.options.items():
            if key.replace("_", "-") == name:
                return entry
        return None

    def lookup(self, section: str, pname: str) -> Entry | None:
        """The setting of parameter ``pname`` in ``[section]`` that wins, or None."""
        want = pname.lower()
        for source in reversed(self.sources):
            for key, entry in source.sections.get(section, {}).items():
                if key.replace("-", "_").lower() == want:
                    return entry
        return None


# -- finding and reading the files ------------------------------------------------------------
def locate_flowfile(start: str, name: str = "Flowfile.py") -> str | None:
    """The nearest file called ``name`` in ``start`` or a parent directory, or None."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, name)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def find_flow_config(start: str) -> tuple[str, str] | None:
    """The nearest flow.toml, or pyproject.toml with a [tool.flow] table, at or above ``start``:
    (path, text), or None."""
    here = os.path.abspath(start)
    while True:
        for name in FLOW_NAMES:
            path = os.path.join(here, name)
            if not os.path.isfile(path):
                continue
            text = _read(path) if name == "flow.toml" else _mentions_flow(path)
            if text is not None and (name == "flow.toml" or _has_flow_table(path, text)):
                return path, text
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _read(path: str) -> str:
    from .configfile import read_text

    return read_text(path)


def _mentions_flow(path: str) -> str | None:
    from .configfile import mentions_flow

    return mentions_flow(path)


def _has_flow_table(path: str, text: str) -> bool:
    from .configfile import parse_toml

    data, _ = parse_toml(path, text)
    return isinstance(data.get("tool"), dict) and "flow" in data["tool"]


def load_options(start: str) -> Config:
    """flow's own configuration (option defaults), found from ``start``: the first step of a run,
    before the Flowfile is known (``[tool.flow] flowfile`` may name it)."""
    found = find_flow_config(start)
    start = os.path.abspath(start)
    if found is None:
        return Config(origin=(start, start, start))
    from .configfile import read_flow_toml

    return Config(flow=read_flow_toml(*found), origin=(start, start, start))


def luigi_paths(flowfile_dir: str, invocation_dir: str) -> list[str]:
    """Luigi's candidate files in precedence order (lowest first), existing or not."""
    dirs = [SYSTEM_DIR, flowfile_dir]
    if os.path.abspath(invocation_dir) != os.path.abspath(flowfile_dir):
        dirs.append(invocation_dir)
    return [os.path.join(os.path.abspath(d), name) for d in dirs for name in LUIGI_NAMES]


def add_parameter_files(config: Config, flowfile_dir: str, invocation_dir: str) -> Config:
    """Read the parameter-default files of a run into ``config``, in precedence order."""
    start = config.origin[0] if config.origin else os.path.abspath(invocation_dir)
    config.origin = (start, os.path.abspath(flowfile_dir), os.path.abspath(invocation_dir))
    for path in luigi_paths(flowfile_dir, invocation_dir):
        if os.path.isfile(path):
            config.sources.append(_read_luigi(path))
    if config.flow is not None:
        config.sources.append(config.flow)
    env = _env_path(invocation_dir)
    if env:
        if os.path.isfile(env):
            config.sources.append(_read_luigi(env))
        else:
            config.warnings.append(
                f"LUIGI_CONFIG_PATH names {os.environ['LUIGI_CONFIG_PATH']}, "
                "which is not a file; ignored"
            )
    return config


def _env_path(invocation_dir: str) -> str | None:
    """``LUIGI_CONFIG_PATH``, a relative one taken from where flow was started."""
    env = os.environ.get("LUIGI_CONFIG_PATH")
    return os.path.join(os.path.abspath(invocation_dir), env) if env else None


def _read_luigi(path: str) -> Source:
    """A Luigi file: TOML by its suffix (as Luigi chooses its parser), else INI."""
    from .configfile import read_ini, read_luigi_toml

    return read_luigi_toml(path) if path.endswith(".toml") else read_ini(path)


def config_files(start: str, flowfile_dir: str, invocation_dir: str | None = None) -> list[str]:
    """The configuration files a run from ``start`` would read (for the completion index key)."""
    found = find_flow_config(start)
    paths = [p for p in luigi_paths(flowfile_dir, invocation_dir or start) if os.path.isfile(p)]
    if found:
        paths.append(found[0])
    env = _env_path(invocation_dir or start)
    if env and os.path.isfile(env):
        paths.append(env)
    return paths


# -- parameter defaults -----------------------------------------------------------------------
def task_defaults(config: Config, tasks: list[Any]) -> dict[tuple[str, str], Any]:
    """(task family, parameter) -> the configured value, parsed by the parameter's own type."""
    out: dict[tuple[str, str], Any] = {}
    if not any(s.sections for s in config.sources):
        return out
    for cls in tasks:
        family = cls.task_family
        for pname, param in cls.get_params():
            entry = parameter_entry(config, family, pname, param)
            if entry is not None:
                out[(family, pname)] = parse_value(entry, param, family)
    return out


def parameter_entry(config: Config, family: str, pname: str, param: Any) -> Entry | None:
    """The setting for a parameter: its task's section, else Luigi's ``config_path``."""
    entry = config.lookup(family, pname)
    path = getattr(param, "config_path", None)
    if entry is None and isinstance(path, dict) and "section" in path and "name" in path:
        entry = config.lookup(path["section"], path["name"])
    return entry


def parse_value(entry: Entry, param: Any, family: str) -> Any:
    """A configured value parsed as the command line parses one, its errors naming the line."""
    from .configfile import display

    try:
        return param.parse_cli(as_text(entry.value), family)
    except ParameterError as exc:
        raise ConfigError(f"{display(entry.where)}: {exc}") from None


def as_text(value: Any) -> str:
    """A TOML value as the command line would spell it (INI values are strings already)."""
    import datetime
    import json

    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


# -- the configuration of this run ------------------------------------------------------------
_active = Config()


def use(config: Config) -> None:
    """Make ``config`` the one ``active_defaults`` answers from (the command line sets it)."""
    global _active
    _active = config


def active_defaults(tasks: list[Any]) -> dict[tuple[str, str], Any]:
    """The configured parameter defaults of this run for ``tasks`` (none outside the CLI)."""
    return task_defaults(_active, tasks)


def history_keep() -> int:
    """How many runs the history keeps: ``history = N`` in [tool.flow], else 100."""
    entry = _active.option("history")
    if entry is None:
        return 100
    value = entry.value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    from .configfile import display
    from .errors import ConfigError

    raise ConfigError(
        f"{display(entry.where)}: bad value {value!r} for history in [tool.flow]: "
        f"expected {OPTIONS['history']}"
    )


def active_files() -> list[str]:
    """The configuration files of this run (watch mode watches them)."""
    return _active.files


def refresh() -> None:
    """Read this run's configuration files again (watch mode, after one changed); the option
    defaults the run started with stay."""
    if _active.origin is None:
        return
    start, flowfile_dir, invocation_dir = _active.origin
    use(add_parameter_files(load_options(start), flowfile_dir, invocation_dir))


# -- settings that name nothing ---------------------------------------------------------------
def check(config: Config, tasks: list[Any]) -> list[str]:
    """Warnings for settings that name no task, parameter or option of this Flowfile."""
    if config.flow is None and not config.sources:
        return list(config.warnings)
    from .configcheck import unknown_settings

    return [*config.warnings, *unknown_settings(config, tasks)]
