"""Shell completion, click's side: the completion classes for bash, zsh and fish, the scripts,
and building the task index by importing the Flowfile, with the facts about click's output
that let quick.py answer the next Tab (and ``--list``) without click."""

from __future__ import annotations

import contextlib
import os
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
from .quick import PROBES
from .taskindex import (
    INDEX_VERSION,
    Origin,
    cached_index,
    candidates,
    code_stamp,
    index_key,
    join_equals,
    locate,
    store,
)


# -- building the index (the Flowfile imported) ------------------------------------------------
def task_index(origin: Origin) -> dict[str, Any] | None:
    """The index of the Flowfile of ``origin``: from `.flow/` when its key matches, else rebuilt
    by importing the Flowfile (and stored). None when the Flowfile cannot be imported."""
    data = cached_index(origin)
    if data is None:
        data = build_index(origin)
        if data is not None:
            store(data)
    return data


def build_index(origin: Origin) -> dict[str, Any] | None:
    """Import the Flowfile (its prints silenced) and describe its tasks, with the parameter
    defaults its configuration files set. Not good for ``--list``: only a ``--list`` run, which
    sees what the import printed and what the configuration warns about, says so."""
    from .flowfile import load_flowfile

    try:
        with _silenced():
            loaded = load_flowfile(origin[0])
        default = loaded.default_task
    except Exception:  # a FlowfileError, or a bad `default`: no index, no candidates
        return None
    defaults = _configured(loaded, origin)
    entries = [
        describe(c, defaults, c is default) for c in loaded.tasks if not c.__name__.startswith("_")
    ]
    return make_index(loaded, origin, entries, listable=False)


def make_index(
    loaded: Any, origin: Origin, entries: list[dict[str, Any]], listable: bool
) -> dict[str, Any] | None:
    """The index of an imported Flowfile: ``entries`` as ``--list --json`` shows them, and what
    click prints for completion. ``listable``: ``--list`` may print ``entries`` as they are."""
    modules = loaded.project_modules()
    key = index_key(origin, modules)
    if key is None:
        return None
    default = loaded.default_task
    return {
        "version": INDEX_VERSION,
        "flow": __version__,
        "code": code_stamp(),
        "flowfile": loaded.path,
        "origin": list(origin),
        "modules": modules,
        "key": key,
        "default": default.task_family if default is not None else None,
        "listable": listable,
        "tasks": entries,
        "click": click_facts(),
    }


def _configured(loaded: Any, origin: Origin) -> dict[tuple[str, str], Any]:
    """The configured parameter defaults (none when a file is broken: the run will say why)."""
    from . import config

    try:
        found = config.add_parameter_files(config.load_options(origin[1]), loaded.root, origin[2])
        return config.task_defaults(found, loaded.tasks)
    except Exception:
        return {}


def describe(cls: Any, defaults: dict[tuple[str, str], Any], is_default: bool) -> dict[str, Any]:
    """One task as ``--list --json`` shows it."""
    from .render import describe_task

    return describe_task(cls, defaults) | {"default_task": is_default}


# -- the index of a --list run ----------------------------------------------------------------
def import_for_listing(path: str, obj: dict[str, Any], script: str | None, here: str) -> Any:
    """Import the Flowfile at ``path`` for ``--list`` (run from ``here``, given ``-f script``),
    noting in ``obj`` where the run looked for configuration and whether anything was written to
    sys.stdout or sys.stderr meanwhile (a listing from the index would not repeat it)."""
    import sys

    from .flowfile import load_flowfile

    start = os.path.dirname(os.path.abspath(script)) if script else here
    printed = [False]
    obj["listing"] = {"where": (start, here), "printed": printed}

    class Watched:
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def write(self, text: str) -> int:
            printed[0] = printed[0] or bool(text)
            return int(self._stream.write(text))

        def __getattr__(self, name: str) -> Any:
            if name in ("buffer", "fileno"):  # bytes written past us: count them as printed
                printed[0] = True
            return getattr(self._stream, name)

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Watched(out), Watched(err)  # type: ignore[assignment]
    try:
        return load_flowfile(path)
    finally:
        sys.stdout, sys.stderr = out, err


def remember_listing(loaded: Any, config: Any, obj: dict[str, Any]) -> None:
    """Store the index after a ``--list`` run of all tasks; ``--list`` may answer from it next
    time if the import printed nothing and the configuration warned of nothing (neither would be
    repeated)."""
    from .config import check
    from .render import list_entries

    listing = obj.get("listing")
    if listing is None:
        return  # a module's tasks (-m, flow.run): nothing to key an index on
    try:
        clean = not listing["printed"][0] and not check(config, loaded.tasks)
        origin = (loaded.path, *listing["where"])
        data = make_index(loaded, origin, list_entries(loaded, []), listable=clean)
        if data is not None:
            store(data)
    except Exception:  # only a cache: the listing was printed
        pass


@contextlib.contextmanager
def _silenced() -> Any:
    """Send whatever the Flowfile prints while importing to /dev/null: stdout is the answer."""
    from .fds import redirected

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with redirected(devnull), open(os.devnull, "w") as sink:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
    finally:
        os.close(devnull)


# -- the click side -----------------------------------------------------------------------------
def complete_tokens(ctx: click.Context, param: Any, incomplete: str) -> list[CompletionItem]:
    """click's ``shell_complete`` for the TASK/PARAM words: tasks, ``name=``, values."""
    return [CompletionItem(v, help=h or None) for v, h in _answer(ctx, incomplete)]


def _answer(ctx: click.Context, incomplete: str) -> list[tuple[str, str | None]]:
    try:
        params = ctx.params
        # A module by name (-m) has nothing to key an index on.
        found = (
            None
            if params.get("module")
            else locate(params.get("flowfile"), params.get("directory"))
        )
        index = task_index(found) if found else None
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
        words, incomplete, self._after_equals = join_equals(args, incomplete)
        return words, incomplete

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


def click_facts() -> dict[str, Any]:
    """What the quick path needs to know of click: flow's options as click offers them after a
    ``-``, and how each shell's class formats the probe items."""
    from .cli import cli

    ctx = cli.make_context("flow", [], resilient_parsing=True)
    options = [
        {
            "name": p.name,
            "multiple": p.multiple,
            "opts": [*p.opts, *p.secondary_opts],
            "help": p.help,
        }
        for p in cli.get_params(ctx)
        if isinstance(p, click.Option) and not p.hidden
    ]
    formats = {
        shell: [
            cls(cli, {}, "flow", "_FLOW_COMPLETE").format_completion(item) for item in _probes()
        ]
        for shell, cls in (("bash", BashComplete), ("zsh", ZshComplete), ("fish", FishComplete))
    }
    import click.shell_completion as module

    st = os.stat(module.__file__ or "")
    # An upgrade of click replaces this file: the quick path then leaves the answer to click.
    return {"options": options, "formats": formats, "source": [module.__file__, st.st_mtime_ns]}


def _probes() -> list[CompletionItem]:
    return [CompletionItem(value, type=kind, help=help) for kind, value, help in PROBES]
