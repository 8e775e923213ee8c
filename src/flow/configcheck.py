"""Settings that name nothing: a section that looks like one of the Flowfile's tasks but is
not, a parameter or [tool.flow] option that does not exist. Each is a warning with a suggestion;
the setting is ignored. Loaded only when a configuration file exists."""

from __future__ import annotations

from typing import Any

from .config import OPTIONS, Config
from .configfile import Entry, Source, display
from .task import _unknown_param_message

# Sections Luigi itself reads (and its contrib modules): never a task's, never warned about.
LUIGI_SECTIONS = frozenset(
    "core worker scheduler resources retcode email smtp sendgrid batch_notifier execution_summary"
    " cors hadoop hdfs hive spark pig elasticsearch redshift bigquery s3 gcs kubernetes sge"
    " ecs batch datadog prometheus logging task_history webhdfs mysql postgres DEFAULT".split()
)


def unknown_settings(config: Config, tasks: list[Any]) -> list[str]:
    """Warnings for settings that name no task or parameter of this Flowfile, with suggestions.

    In Luigi's files only sections that look like one of the Flowfile's tasks are checked:
    they also hold Luigi's own sections ([core], [worker], ...) and other programs' settings.
    """
    families = {cls.task_family: cls for cls in tasks}
    by_path = _config_path_sections(tasks)
    out: list[str] = []
    for source in config.sources:
        for section, entries in source.sections.items():
            cls = families.get(section)
            if cls is not None:
                out += _unknown_keys(source, section, entries, cls, by_path.get(section, set()))
            elif section not in by_path and not _container(section, entries, families):
                out += _unknown_section(source, section, families)
    for key, entry in config.flow.options.items() if config.flow else ():
        if key == "tool" and isinstance(entry.value, dict) and "flow" in entry.value:
            out.append(
                f"{display(entry.where)}: [tool.flow] in flow.toml is ignored: there its keys "
                "go at the top level (jobs = 2, [tasks.NAME])"
            )
        elif key.replace("_", "-") not in OPTIONS:
            out.append(f"{display(entry.where)}: {_unknown('option', key, list(OPTIONS))}")
    return out


def _config_path_sections(tasks: list[Any]) -> dict[str, set[str]]:
    """Sections named by parameters' Luigi ``config_path``, with the keys they read."""
    out: dict[str, set[str]] = {}
    for cls in tasks:
        for _, param in cls.get_params():
            path = getattr(param, "config_path", None)
            if isinstance(path, dict) and "section" in path and "name" in path:
                out.setdefault(path["section"], set()).add(path["name"].replace("-", "_").lower())
    return out


def _container(section: str, entries: dict[str, Entry], families: dict[str, Any]) -> bool:
    """A TOML table that only holds others (``[examples]`` above ``[examples.Foo]``)."""
    if any(f.startswith(section + ".") for f in families):
        return True
    return bool(entries) and all(isinstance(e.value, dict) for e in entries.values())


def _unknown_keys(
    source: Source, section: str, entries: dict[str, Entry], cls: Any, extra: set[str]
) -> list[str]:
    names = {n.lower() for n, _ in cls.get_params()} | extra
    out = []
    for key, entry in entries.items():
        norm = key.replace("-", "_").lower()
        nested = isinstance(entry.value, dict) and f"{section}.{key}" in source.sections
        if norm in names or entry.inherited or nested:
            continue
        message = _unknown_param_message(cls, norm)
        out.append(f"{display(entry.where)}: {message} in [{section}]; the setting is ignored")
    return out


def _unknown_section(source: Source, section: str, families: dict[str, Any]) -> list[str]:
    """A warning for a section that looks like a task of this Flowfile but names none."""
    if source.kind == "luigi" and section in LUIGI_SECTIONS:
        return []
    names = list(families)
    loose = _loose(section)
    close = [f for f in names if loose in (_loose(f), _loose(f.rsplit(".", 1)[-1]))]
    if not close:
        import difflib  # only for a section no looser match explains

        close = difflib.get_close_matches(section, names, n=3, cutoff=0.8)
    if not close and source.kind == "luigi":
        return []  # another program's section, or Luigi's: not ours to judge
    hint = f"; did you mean [{'], ['.join(close)}]?" if close else ""
    listing = f" (tasks: {', '.join(names)})" if names and not close else ""
    return [
        f"{display(source.header(section))}: [{section}] names no task of this Flowfile, "
        f"so its settings are ignored{hint}{listing}"
    ]


def _unknown(what: str, name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name.replace("_", "-"), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {what} '{name}' in [tool.flow], ignored{hint} (known: {', '.join(known)})"


def _loose(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()
