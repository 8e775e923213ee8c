"""Shell completion: a task index cached in `.flow/`, and the candidates for one Tab.

The index is keyed by the content hash of the Flowfile and the project modules it imported, so a
Tab in an unchanged project never imports the Flowfile. Every failure (no Flowfile, a broken
one, a corrupt index) means "no candidates", never a traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    add_completion_class,
)

from ._version import __version__

INDEX_VERSION = 1


# -- the index --------------------------------------------------------------------------------
def content_key(paths: list[str]) -> str | None:
    """xxh3_128 over the paths and contents of ``paths``; None when one cannot be read."""
    import xxhash

    h = xxhash.xxh3_128()
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        h.update(data + b"\0")
    return h.hexdigest()


def _config_files(flowfile: str, start: str) -> list[str]:
    """The configuration files a run would read: part of the key, so an edit refreshes it."""
    from .config import config_files

    try:
        return config_files(start, os.path.dirname(flowfile))
    except Exception:
        return []


def _valid(data: Any, flowfile: str, start: str) -> bool:
    """Trust a stored index only if it is ours, current, and its files hash to its key."""
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        return False
    if data.get("flow") != __version__ or data.get("flowfile") != flowfile:
        return False
    modules = data.get("modules")
    tasks = data.get("tasks")
    if not isinstance(modules, list) or not isinstance(tasks, list):
        return False
    if not all(isinstance(m, str) for m in modules):
        return False
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks):
        return False
    key = content_key([flowfile, *modules, *_config_files(flowfile, start)])
    return key is not None and key == data.get("key")


def task_index(flowfile: str, start: str | None = None) -> dict[str, Any] | None:
    """The index of ``flowfile``'s tasks: from `.flow/` when its key matches, else rebuilt by
    importing the Flowfile (and stored). None when the Flowfile cannot be imported.
    ``start`` is where the command runs (where configuration files are looked for)."""
    from .store import store_dir
    from .store.index import read_index, write_index

    flowfile = os.path.abspath(flowfile)
    start = os.path.abspath(start or os.path.dirname(flowfile))
    flow_dir = store_dir(os.path.dirname(flowfile))
    data = read_index(flow_dir)
    if _valid(data, flowfile, start):
        return data  # type: ignore[no-any-return]
    data = build_index(flowfile, start)
    if data is not None:
        write_index(flow_dir, data)
    return data


def build_index(flowfile: str, start: str | None = None) -> dict[str, Any] | None:
    """Import the Flowfile (its prints silenced) and describe its tasks for completion, with
    the parameter defaults its configuration files set."""
    from .flowfile import load_flowfile

    start = os.path.abspath(start or os.path.dirname(flowfile))
    try:
        with _silenced():
            loaded = load_flowfile(flowfile)
        default = loaded.default_task
    except Exception:  # a FlowfileError, or a bad `default`: no index, no candidates
        return None
    modules = loaded.project_modules()
    key = content_key([loaded.path, *modules, *_config_files(loaded.path, start)])
    if key is None:
        return None
    defaults = _configured(loaded, start)
    tasks = [_describe(c, defaults) for c in loaded.tasks if not c.__name__.startswith("_")]
    return {
        "version": INDEX_VERSION,
        "flow": __version__,
        "flowfile": loaded.path,
        "modules": modules,
        "key": key,
        "default": default.task_family if default is not None else None,  # type: ignore[attr-defined]
        "tasks": tasks,
    }


def _configured(loaded: Any, start: str) -> dict[tuple[str, str], Any]:
    """The configured parameter defaults (none when a file is broken: the run will say why)."""
    from . import config

    try:
        found = config.add_parameter_files(config.load_options(start), loaded.root, start)
        return config.task_defaults(found, loaded.tasks)
    except Exception:
        return {}


def _describe(cls: Any, defaults: dict[tuple[str, str], Any]) -> dict[str, Any]:
    from .render import describe_task

    entry = describe_task(cls, defaults)
    params = [
        {
            "name": p["name"],
            "type": p["type"],
            "default": p["default"],
            "values": p["choices"],
            "description": p["description"] or "",
        }
        for p in entry["params"]
    ]
    return {"name": entry["name"], "doc": entry["doc"], "params": params}


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send whatever the Flowfile prints while importing to /dev/null: stdout is the answer."""
    from .fds import redirected

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with redirected(devnull), open(os.devnull, "w") as sink:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
    finally:
        os.close(devnull)


# -- candidates (a pure function of the index and the words typed) ---------------------------
def _loose(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def _find(index: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The task entry called ``name`` as the command line would match it, or None."""
    tasks = index["tasks"]
    for same in (
        lambda t: t["name"] == name,
        lambda t: t["name"].rsplit(".", 1)[-1] == name,
        lambda t: t["name"].lower() == name.lower(),
        lambda t: (
            _loose(t["name"]) == _loose(name)
            or _loose(t["name"].rsplit(".", 1)[-1]) == _loose(name)
        ),
    ):
        found = [t for t in tasks if same(t)]
        if len(found) == 1:
            return found[0]  # type: ignore[no-any-return]
    return None


def _params(task: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in task["params"]} if task else {}


def _scan(
    index: dict[str, Any], tokens: list[str]
) -> tuple[dict[str, Any] | None, set[str], dict[str, Any] | None]:
    """Walk the words before the cursor: the current task, the parameters it was given, and a
    parameter whose value comes next (after ``--name``)."""
    current: dict[str, Any] | None = None
    given: set[str] = set()
    pending: dict[str, Any] | None = None

    def task() -> dict[str, Any] | None:
        nonlocal current
        if current is None and index.get("default"):
            current = _find(index, index["default"])
        return current

    for tok in tokens:
        if pending is not None:
            pending = None
            continue
        if tok.startswith("--"):
            name, eq, _ = tok[2:].partition("=")
            name = name.replace("-", "_")
            params = _params(task())
            if name.startswith("no_") and name not in params:
                name = name[3:]
            if name in params:
                given.add(name)
                if not eq and params[name]["type"] != "bool":
                    pending = params[name]
        elif tok.startswith("-"):
            continue
        elif "=" in tok:
            name = tok.split("=", 1)[0]
            if "." not in name:
                task()
                given.add(name)
        else:
            found = _find(index, tok)
            if found is not None:
                current, given = found, set()
    return task(), given, pending


def candidates(index: dict[str, Any], tokens: list[str], incomplete: str) -> list[tuple[str, str]]:
    """The (value, help) pairs to offer for ``incomplete`` after the words ``tokens``."""
    current, given, pending = _scan(index, tokens)
    if pending is not None:
        return [(v, "") for v in pending["values"] if v.startswith(incomplete)]
    if incomplete.startswith("-"):
        return [
            (f"--{p['name']}", p["description"] or p["type"])
            for p in _params(current).values()
            if p["name"] not in given and f"--{p['name']}".startswith(incomplete)
        ]
    if "=" in incomplete:
        name, _, prefix = incomplete.partition("=")
        task = current
        pname = name
        if "." in name:
            family, _, pname = name.rpartition(".")
            task = _find(index, family)
        param = _params(task).get(pname)
        if param is None:
            return []
        return [(f"{name}={v}", "") for v in param["values"] if v.startswith(prefix)]
    low = incomplete.lower()
    out = [(t["name"], t["doc"]) for t in index["tasks"] if t["name"].lower().startswith(low)]
    free = [p for p in _params(current).values() if p["name"] not in given]
    matching = [p for p in free if p["name"].startswith(incomplete)]
    if len(matching) == 1 and not out:
        # One parameter left to offer: give its values too, so the shell inserts "name=" and
        # waits (a single "name=" candidate would get a space appended after it).
        p = matching[0]
        values = p["values"] or ([p["default"]] if p["default"] is not None else [])
        return [(f"{p['name']}={v}", p["description"]) for v in values] or [
            (f"{p['name']}=", p["description"] or p["type"])
        ]
    out += [(f"{p['name']}=", p["description"] or p["type"]) for p in matching]
    return out


# -- the click side -----------------------------------------------------------------------------
def _flowfile_of(params: dict[str, Any]) -> tuple[str, str] | None:
    """The Flowfile a command line would use, found without importing anything, and the
    directory the command would start in."""
    from .flowfile import find_flowfile

    if params.get("module"):
        return None  # a module by name: nothing to key an index on
    base = os.path.abspath(params.get("directory") or os.getcwd())
    if params.get("flowfile"):
        path = os.path.join(base, params["flowfile"])
        return path, os.path.dirname(path)
    try:
        return _configured_flowfile(base) or find_flowfile(base), base
    except Exception:
        return None


def _configured_flowfile(base: str) -> str | None:
    """The Flowfile that ``[tool.flow] flowfile`` names, if any."""
    from .config import load_options

    try:
        entry = load_options(base).option("flowfile")
    except Exception:  # a broken configuration: complete from the usual Flowfile
        return None
    if entry is None or not isinstance(entry.value, str):
        return None
    return os.path.join(os.path.dirname(entry.path), entry.value)


def complete_tokens(ctx: click.Context, param: Any, incomplete: str) -> list[CompletionItem]:
    """click's ``shell_complete`` for the TASK/PARAM words: tasks, ``name=``, values."""
    return [CompletionItem(v, help=h or None) for v, h in _answer(ctx, incomplete)]


def _answer(ctx: click.Context, incomplete: str) -> list[tuple[str, str]]:
    try:
        found = _flowfile_of(ctx.params)
        index = task_index(*found) if found else None
        if index is None:
            return []
        return candidates(index, list(ctx.params.get("tokens") or ()), incomplete)
    except Exception:  # completion must never print a traceback
        return []


class _FlowComplete(ShellComplete):
    """click's completion, plus a task's ``--param`` names after ``-`` and no tracebacks."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        try:
            items: list[CompletionItem] = super().get_completions(args, incomplete)
            if incomplete.startswith("-") and "--" not in args:
                kwargs = {**self.ctx_args, "resilient_parsing": True}
                ctx = self.cli.make_context(self.prog_name, list(args), **kwargs)
                items += [CompletionItem(v, help=h or None) for v, h in _answer(ctx, incomplete)]
            return items
        except Exception:
            return []


class _Bash(_FlowComplete, BashComplete):
    """Bash splits ``n=tr`` into ``n``, ``=``, ``tr`` (COMP_WORDBREAKS): join them back, and
    answer with the value alone, since bash replaces only the part after ``=``."""

    _after_equals = False

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        words: list[str] = []
        glue = False
        for word in [*args, incomplete]:
            if word == "=" and words:
                words[-1] += "="
                glue = True
            elif glue:
                words[-1] += word
                glue = False
            else:
                words.append(word)
        # The shell's current word is what follows the "=": answer with values alone.
        self._after_equals = glue or incomplete != words[-1]
        return words[:-1], words[-1]

    def format_completion(self, item: CompletionItem) -> str:
        if self._after_equals:
            item = CompletionItem(item.value.split("=", 1)[-1], type=item.type, help=item.help)
        return super().format_completion(item)


class _Zsh(_FlowComplete, ZshComplete):
    pass


class _Fish(_FlowComplete, FishComplete):
    pass


def install() -> None:
    """Use flow's completion classes for bash, zsh and fish (the scripts stay click's)."""
    for cls in (_Bash, _Zsh, _Fish):
        add_completion_class(cls, cls.name)


def script(cli: click.Command, shell: str) -> str:
    """The completion script for ``shell``, exactly as click generates it for ``flow``."""
    install()
    classes = {"bash": _Bash, "zsh": _Zsh, "fish": _Fish}
    return classes[shell](cli, {}, "flow", "_FLOW_COMPLETE").source()
