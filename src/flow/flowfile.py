"""Find and import the Flowfile, collect its task classes, turn import errors into clean messages."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .errors import FlowError, FlowfileError, UsageError
from .task import Config, ExternalTask, Register, Task, WrapperTask

FLOWFILE_NAME = "Flowfile.py"
_FLOW_PKG = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Flowfile:
    """An imported Flowfile: where it is, its module, and the task classes it offers."""

    path: str
    module: ModuleType
    tasks: list[Any] = field(default_factory=list)

    @property
    def root(self) -> str:
        return os.path.dirname(self.path)

    @property
    def default_task(self) -> type | None:
        """The module's ``default`` (a class or a name), else the first task class defined in it."""
        default = getattr(self.module, "default", None)
        if isinstance(default, type) and issubclass(default, Task):
            return default
        if isinstance(default, str):
            return find_task(self, default)
        # A Config class holds settings; it is never what a bare `flow` means to build.
        own = [
            c
            for c in self.tasks
            if c.__module__ == self.module.__name__ and not issubclass(c, Config)
        ]
        return own[0] if own else None

    @property
    def roots(self) -> tuple[str, ...]:
        """The Flowfile's directory, and the real file's directory when the Flowfile is a symlink:
        the Flowfile and the modules beside it are project code wherever it really lives."""
        return tuple(dict.fromkeys([self.root, os.path.dirname(os.path.realpath(self.path))]))

    def __post_init__(self) -> None:
        _flowfile_dirs.update(self.roots)

    def project_modules(self) -> list[str]:
        """Files of the modules imported from the project, the Flowfile itself excluded."""
        return sorted(f for f in set(project_modules(self).values()) if f != self.path)


# Directories of every Flowfile this process loaded (-f, --module, a script, a symlink): code
# there is the project's even when the current directory is elsewhere.
_flowfile_dirs: set[str] = set()


class ProjectFiles:
    """The one answer to "is this file the project's code?": it lies under one of the roots
    (as named or once symlinks are resolved), and is neither flow's own source, Python's
    library and environment, nor an installed package. ``path in files`` asks it."""

    def __init__(self, roots: Iterable[str]) -> None:
        dirs = {form(r) for r in roots for form in (os.path.abspath, os.path.realpath)}
        self.roots = tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs))
        # Python's own library and environment (a venv in the project, a Python built under
        # $HOME), unless the project itself lies inside one (an app in /usr/src, Python in /usr).
        prefixes = {
            os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
        }
        flow_pkg = {_FLOW_PKG + os.sep, os.path.realpath(_FLOW_PKG) + os.sep}
        self.outside = tuple(flow_pkg) + tuple(
            p for p in prefixes if not any(r.startswith(p) for r in self.roots)
        )
        self._memo: dict[str, bool] = {}

    def __contains__(self, filename: object) -> bool:
        if not isinstance(filename, str) or not filename:
            return False
        try:
            return self._memo[filename]
        except KeyError:
            pass
        forms = {os.path.abspath(filename), os.path.realpath(filename)}
        found = any(f.startswith(self.roots) for f in forms) and not any(
            f.startswith(self.outside) or "site-packages" in f or "dist-packages" in f
            for f in forms
        )
        self._memo[filename] = found
        return found


def project_files(*roots: str) -> ProjectFiles:
    """The project's files: under ``roots`` or beside any Flowfile loaded in this process."""
    return ProjectFiles([*roots, *sorted(_flowfile_dirs)])


def find_flowfile(start: str) -> str:
    """The nearest ``Flowfile.py`` in ``start`` or a parent directory."""
    from .config import locate_flowfile

    found = locate_flowfile(start, FLOWFILE_NAME)
    if found is None:
        raise FlowfileError(
            f"no {FLOWFILE_NAME} in {os.path.abspath(start)} or any parent directory; "
            "create one, or name a file with -f FILE"
        )
    return found


def load_flowfile(path: str) -> Flowfile:
    """Import the Flowfile at ``path`` (after changing into its directory)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FlowfileError(f"Flowfile {path} does not exist; check the -f argument")
    root = os.path.dirname(path)
    os.chdir(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if stem.isidentifier() and stem not in sys.modules else "__flowfile__"
    # An explicit loader, so a Flowfile need not end in .py (Flowfile.example, a script).
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__flow_flowfile__ = path  # type: ignore[attr-defined]  # workers import it by path
    sys.modules[name] = module
    try:
        with _import_errors(path):
            loader.exec_module(module)
    except FlowfileError:
        sys.modules.pop(name, None)
        raise
    return Flowfile(path, module, collect_tasks(module))


def project_modules(flowfile: Flowfile) -> dict[str, str]:
    """The modules imported from the project, name -> file: files beside or below the Flowfile,
    neither installed packages nor flow itself. The Flowfile's own module is among them."""
    files = ProjectFiles(flowfile.roots)
    out = {}
    for name, mod in list(sys.modules.items()):
        fname = getattr(mod, "__file__", None)
        if isinstance(fname, str) and fname in files:
            out[name] = os.path.abspath(fname)
    return out


def reload_flowfile(flowfile: Flowfile) -> Flowfile:
    """Import the Flowfile again, and the project modules it imported (watch mode).

    The old task classes leave the registry and the instance cache, so only the new ones are
    found. On an error everything is put back (the last good Flowfile stays usable) and the
    error is raised as for a first import.
    """
    old = set(project_modules(flowfile)) | {flowfile.module.__name__}
    names = old - {"__main__"}  # a script run as `python pipeline.py` stays; its classes go
    saved_modules = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    saved_registry = list(Register.registry)
    Register.registry[:] = [c for c in saved_registry if c.__module__ not in old]
    Register.clear_instance_cache()
    importlib.invalidate_caches()  # a module file created since the last import must be found
    prefix, no_write = sys.pycache_prefix, sys.dont_write_bytecode
    # Compile from source: a .pyc records its source's mtime in whole seconds, so one written
    # just before a same-sized edit would look current. os.devnull can hold no cache.
    sys.pycache_prefix, sys.dont_write_bytecode = os.devnull, True
    try:
        name = flowfile.module.__name__
        if "." in name:  # a package module (--module pkg.pipeline): its relative imports need it
            return load_module(name)
        return load_flowfile(flowfile.path)
    except BaseException:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved_modules)
        Register.registry[:] = saved_registry
        Register.clear_instance_cache()
        raise
    finally:
        sys.pycache_prefix, sys.dont_write_bytecode = prefix, no_write


def load_module(name: str) -> Flowfile:
    """Import a module by name (Luigi's ``--module``) and use it as the Flowfile; a name
    ending in ``.py`` (or naming a file) is that file, as with ``-f``.

    A module name is looked up in the current directory first, then on ``sys.path``, as
    ``python -m`` does (the ``flow`` script's own directory is first on its path otherwise).
    """
    if name.endswith(".py") or os.sep in name or os.path.isfile(name):
        if not os.path.isfile(name):
            raise FlowfileError(
                f"-m/--module {name}: no such file {os.path.abspath(name)}; name a module "
                f"(-m {os.path.splitext(os.path.basename(name))[0]}) or an existing file"
            )
        return load_flowfile(name)
    here = os.getcwd()
    if not sys.path or sys.path[0] not in ("", here):
        sys.path.insert(0, here)
    importlib.invalidate_caches()
    with _import_errors(f"module {name}"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise FlowfileError(_no_module_message(name, here)) from None
            raise
    return from_module(module)


def _no_module_message(name: str, here: str) -> str:
    """What -m NAME looked for, and where."""
    rel = name.replace(".", os.sep)
    tried = [os.path.join(here, rel + ".py"), os.path.join(here, rel, "__init__.py")]
    path = [p for p in sys.path[1:] if p and p != here]
    return (
        f"no module named {name!r}: tried {tried[0]}, {tried[1]}, then sys.path "
        f"({', '.join(path) or 'empty'}); name a file with -m FILE.py or -f FILE, "
        "or add its directory to PYTHONPATH"
    )


@contextlib.contextmanager
def _import_errors(what: str) -> Iterator[None]:
    """Turn whatever importing the user's code raises into a clean FlowfileError."""
    try:
        yield
    except FlowError:
        raise
    except SyntaxError as exc:
        raise FlowfileError(_syntax_message(exc)) from None
    except SystemExit as exc:
        raise FlowfileError(f"{what} called exit({exc.code}) while being imported") from None
    except Exception as exc:
        raise FlowfileError(f"{what} failed to import:\n{user_traceback(exc)}") from None


def from_module(module: ModuleType) -> Flowfile:
    """Use an already imported module (``flow.run()`` from a script) as the Flowfile."""
    path = os.path.abspath(getattr(module, "__file__", None) or os.path.join(os.getcwd(), "<main>"))
    return Flowfile(path, module, collect_tasks(module))


_BASES = {Task, WrapperTask, ExternalTask, Config}


def collect_tasks(module: ModuleType) -> list[type]:
    """Every task class defined outside flow, in definition order: the module's own and those
    it imported (a Luigi registry sees every imported task too)."""
    out = []
    for cls in Register.registry:
        if cls in _BASES or cls.__module__.split(".")[0] == "flow":
            continue
        out.append(cls)
    return out


def _loose(name: str) -> str:
    """A name with case, dashes and underscores folded: `http-fetch` matches `HTTPFetch`."""
    return name.replace("-", "").replace("_", "").lower()


def find_task(flowfile: Flowfile, name: str) -> Any:
    """The task class called ``name``: full or short name, any case, or kebab-case."""
    tasks = flowfile.tasks
    for match in (
        lambda c: c.task_family == name,
        lambda c: c.__name__ == name,
        lambda c: c.task_family.lower() == name.lower() or c.__name__.lower() == name.lower(),
        lambda c: _loose(c.__name__) == _loose(name) or _loose(c.task_family) == _loose(name),
    ):
        found = [c for c in tasks if match(c)]
        # Prefer the Flowfile's own classes over imported ones of the same name.
        own = [c for c in found if c.__module__ == flowfile.module.__name__]
        if len(own) == 1:
            return own[0]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(sorted(c.task_family for c in found))
            raise UsageError(
                f"task name {name!r} is ambiguous: it matches {names}; use the full name"
            )
    builtin = _builtin_task(name)
    if builtin is not None:
        return builtin
    raise UsageError(unknown_task_message(flowfile, name))


def _builtin_task(name: str) -> Any:
    """flow's own tasks a command line may name without importing them (``RangeDaily``)."""
    short = name.removeprefix("flow.range.").removeprefix("luigi.tools.range.")
    if short.lower() not in {"rangedaily", "rangehourly", "rangemonthly", "rangebyminutes"}:
        return None
    from . import range as ranges

    return next(getattr(ranges, n) for n in ranges.__all__ if n.lower() == short.lower())


def unknown_task_message(flowfile: Flowfile, name: str) -> str:
    names = [c.task_family for c in flowfile.tasks if not c.__name__.startswith("_")]
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    listing = f" Tasks: {', '.join(names)}." if names else " The Flowfile defines no tasks."
    return f"unknown task {name!r} in {os.path.basename(flowfile.path)}{hint}{listing} (flow --list shows them all)"


def _syntax_message(exc: SyntaxError) -> str:
    where = f"{exc.filename}:{exc.lineno}" if exc.lineno else str(exc.filename)
    lines = [f"{where}: {exc.msg}"]
    if exc.text:
        lines.append("    " + exc.text.rstrip("\n"))
        if exc.offset:
            lines.append("    " + " " * (exc.offset - 1) + "^")
    return "\n".join(lines) + "\nfix the Flowfile and run flow again"


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without flow's or importlib's frames: only the user's code."""
    import traceback  # only when something failed: keep it off every start

    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not _is_internal(f.filename)]
    )
    return "".join(te.format()).rstrip("\n")


def _is_internal(filename: str) -> bool:
    return filename.startswith(_FLOW_PKG) or filename.startswith("<frozen importlib")
