"""Follow a task class's code to the project functions, classes and constants it uses.

Names are resolved statically, as Python would at the moment of hashing: the global names and
attribute chains (``helpers.scale``) a function's bytecode loads, its closure cells, the names in
its decorators and default arguments, and the names a class body uses. Only the project's files
are followed (``flowfile.ProjectFiles``): never installed packages, the standard library or flow.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

from .codesource import (
    IMPORTED,
    Chain,
    Source,
    ast_chains,
    code_chains,
    code_text,
    live_definition,
    methods,
    parse,
)
from .fingerprint import hash_bytes
from .task import Task


@dataclass(frozen=True, slots=True)
class Ref:
    """A value some code reaches: its name where it was found, and that namespace's file."""

    value: Any
    label: str = ""
    home: str | None = None


@dataclass(slots=True)
class Node:
    """One dependency as hashed: its file and name, the hash of its text, what it reaches."""

    file: str
    name: str
    digest: str
    refs: list[Ref]


# Nodes by the identity of their object, kept from one build to the next in one process (watch
# mode): a module-level dict a helper fills as a memo, or a closure cell, would otherwise hash
# differently after a run. Reloading a changed module makes new objects, hashed afresh. Only the
# last build's nodes are kept, so old modules are not kept alive.
_memo: dict[tuple[int, str, str | None], tuple[Any, Node | None]] = {}


class Tracer:
    """The dependencies of task classes, as ``Node``s: what to hash and what it reaches."""

    def __init__(self, files: Any, root: str) -> None:
        global _memo
        self.files = files
        self.root = root
        self._sources: dict[str, Source] = {}
        self._chains: dict[CodeType, list[Chain]] = {}
        self._previous, _memo = _memo, {}

    def trace(self, cls: type) -> list[tuple[str, str, str]]:
        """``(file, name, digest)`` of the project classes ``cls`` is made of and of everything
        they reach, in the order found; two things with one name share one digest."""
        found: dict[tuple[str, str], str] = {}
        seen: set[tuple[int, str, str | None]] = set()
        queue: deque[Node] = deque()
        for klass in cls.__mro__:
            node = self._class(klass)
            if node is not None:
                queue.append(node)
                seen.add((id(klass), "", None))
        while queue:
            node = queue.popleft()
            key = (node.file, node.name)
            digest = (
                node.digest
                if key not in found
                else hash_bytes(f"{found[key]}{node.digest}".encode())
            )
            found[key] = digest
            for ref in node.refs:
                ident = _identity(ref)
                if ident not in seen:
                    seen.add(ident)
                    reached = self.node(ref)
                    if reached is not None:
                        queue.append(reached)
        return [(f, n, d) for (f, n), d in found.items()]

    def node(self, ref: Ref) -> Node | None:
        """What ``ref`` is, as a dependency: a project function, class or constant, or nothing."""
        key = _identity(ref)
        hit = _memo.get(key) or self._previous.get(key)
        if hit is None:
            hit = (ref.value, self._classify(ref))
        _memo[key] = hit
        return hit[1]

    def _classify(self, ref: Ref) -> Node | None:
        value = ref.value
        if isinstance(value, WholeFile):
            text = self.source(value.path).dump_all()
            return Node(
                self.relative(value.path),
                "(imported inside a function)",
                hash_bytes(text.encode()),
                [],
            )
        if isinstance(value, (staticmethod, classmethod, MethodType)):
            value = value.__func__
        if isinstance(value, FunctionType):
            return self._function(value)
        if isinstance(value, type):
            # A task class another task names is a dependency, not code it runs: its outputs
            # count as inputs (and early cutoff holds when it reruns with the same result).
            return None if issubclass(value, Task) else self._class(value)
        if ref.home is None or ref.home not in self.files or isinstance(value, ModuleType):
            return None
        if callable(value) and not isinstance(value, functools.partial):
            wrapped = _wrapped(value)
            if wrapped is not None:  # @functools.cache and other wrappers: the wrapped code
                return self._function(wrapped)
            if not self._is_project_class(type(value)):
                return None  # a library's function or callable object: not followed
        return self._constant(value, ref)

    def _function(self, fn: FunctionType) -> Node | None:
        code = fn.__code__
        if code.co_filename not in self.files:
            return None
        nodes = self.source(code.co_filename).function(code)
        text = "".join(self.source(code.co_filename).dump(n) for n in nodes) or code_text(code)
        refs = self.function_refs(fn, nodes)
        for name, value in _closure(fn):  # a closure's values are part of the function made
            if not callable(value):
                text += f"\n{name}={stable_repr(value)}"
        name = getattr(code, "co_qualname", fn.__qualname__)  # not a wrapper's borrowed name
        return Node(self.relative(code.co_filename), name + "()", hash_bytes(text.encode()), refs)

    def function_refs(self, fn: FunctionType, nodes: Iterable[ast.AST] = ()) -> list[Ref]:
        """What a function's code reaches: the global names and attribute chains its bytecode
        loads, the values in its closure, its decorators and default arguments."""
        namespace = fn.__globals__
        chains = self.code_chains(fn.__code__) + ast_chains(nodes)
        refs = []
        for chain in chains:
            if chain[0].startswith(IMPORTED):
                refs += resolve_import(namespace, chain, self.files)
            elif (ref := resolve(namespace, chain, self.files)) is not None:
                refs.append(ref)
        home = namespace.get("__file__")
        for _, value in _closure(fn):  # plain values are in the function's own hash
            refs.append(Ref(value) if callable(value) else Ref(type(value)))
        for value in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            if callable(value):
                refs.append(Ref(value, "", home))
        wrapped = _wrapped(fn)
        if wrapped is not None:
            refs.append(Ref(wrapped))
        return refs

    def _class(self, klass: type) -> Node | None:
        module = sys.modules.get(klass.__module__)
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or filename not in self.files:
            return None
        source = self.source(filename)
        defs = source.classes.get(klass.__qualname__)
        if defs:
            node = live_definition(klass, defs, filename)
            text = source.dump(node)
            chains = ast_chains([*node.bases, *node.keywords, *node.decorator_list, *node.body])
        else:  # defined by exec() or otherwise without source: its names still count
            text, chains = ",".join(sorted(vars(klass))), []
        if "version" in vars(klass):
            text += f"\nversion={version_text(klass)}"
        namespace = vars(module) if module is not None else {}
        refs = [r for c in chains if (r := resolve(namespace, c, self.files)) is not None]
        refs += [Ref(base) for base in klass.__bases__]
        for fn in methods(klass):
            if fn.__code__.co_filename == filename and fn.__qualname__.startswith(
                klass.__qualname__ + "."
            ):
                refs += self.function_refs(fn)  # its text is in the class's
            else:
                refs.append(Ref(fn))  # assigned from elsewhere, or a decorator's wrapper
        return Node(self.relative(filename), klass.__qualname__, hash_bytes(text.encode()), refs)

    def _constant(self, value: Any, ref: Ref) -> Node:
        """A module-level value: by value for plain data, else by type and address-free repr."""
        refs = [Ref(type(value))]
        if isinstance(value, functools.partial):
            refs.append(Ref(value.func))
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            # A dispatch table ({"csv": read_csv, ...}) reaches the functions it holds.
            items = value.values() if isinstance(value, dict) else value
            refs += [Ref(v) for _, v in zip(range(1000), items, strict=False) if callable(v)]
        assert ref.home is not None
        digest = hash_bytes(stable_repr(value).encode())
        return Node(self.relative(ref.home), ref.label, digest, refs)

    def _is_project_class(self, klass: type) -> bool:
        module = sys.modules.get(klass.__module__)
        return getattr(module, "__file__", None) in self.files

    def source(self, filename: str) -> Source:
        try:
            return self._sources[filename]
        except KeyError:
            source = self._sources[filename] = parse(filename)
            return source

    def code_chains(self, code: CodeType) -> list[Chain]:
        try:
            return self._chains[code]
        except KeyError:
            chains = self._chains[code] = code_chains(code)
            return chains

    def relative(self, filename: str) -> str:
        """A file as the code map names it: relative to the project root when under it."""
        rel = os.path.relpath(os.path.abspath(filename), self.root)
        return os.path.abspath(filename) if rel.startswith("..") else rel


def _identity(ref: Ref) -> tuple[int, str, str | None]:
    """Functions and classes are themselves wherever they are named; a constant is a value
    under one name in one module."""
    if isinstance(ref.value, (FunctionType, type)):
        return (id(ref.value), "", None)
    return (id(ref.value), ref.label, ref.home)


def resolve(namespace: dict[str, Any], chain: Chain, files: Any) -> Ref | None:
    """The value a chain names in a module's namespace, following attributes through project
    modules only; None for a builtin, an undefined name, or a module."""
    name, attrs = chain
    if name not in namespace:
        return None
    value, label, home = namespace[name], name, namespace.get("__file__")
    for attr in attrs:
        if not isinstance(value, ModuleType):
            break
        filename = _module_file(value)
        if filename not in files or attr not in vars(value):
            return None  # an installed module, or a name it makes up on access
        value, label, home = vars(value)[attr], attr, filename
    return None if isinstance(value, ModuleType) else Ref(value, label, home)


def resolve_import(namespace: dict[str, Any], chain: Chain, files: Any) -> list[Ref]:
    """What an import inside a function takes from a project module: the names it imports, or
    (``import helpers as h``, whose uses go through a local name) everything the module defines.
    Nothing for a module outside the project or one not imported yet."""
    import importlib.util

    level, _, module = chain[0][len(IMPORTED) :].partition(":")
    try:
        absolute = importlib.util.resolve_name(
            "." * int(level) + module, namespace.get("__package__") or None
        )
    except (ImportError, ValueError):
        return []
    found = sys.modules.get(absolute)
    if found is None:  # not imported yet (a dry run, a run before run()): whole files count
        names = [absolute] + [f"{absolute}.{n}" for n in chain[1] if n != "*"]
        paths = [p for n in names if (p := _find_without_importing(n)) is not None]
        return [Ref(WholeFile(p), "", p) for p in paths if p in files]
    refs: list[Ref] = []
    for name in chain[1]:
        value = found if name == "*" else vars(found).get(name)
        if isinstance(value, ModuleType):  # `import pkg.mod`, `from pkg import mod`: all of it
            refs += _module_refs(value, files)
        elif value is not None and _module_file(found) in files:
            refs.append(Ref(value, name, _module_file(found)))
    return refs


@dataclass(frozen=True, slots=True)
class WholeFile:
    """A project module a function imports that no code has imported yet: hashed whole."""

    path: str


def _find_without_importing(name: str) -> str | None:
    """The file of module ``name``, found as ``import`` would (packages through their
    directories), without running any of it; None when there is no such source file."""
    import importlib.machinery

    search = None
    spec = None
    for part in name.split("."):
        spec = importlib.machinery.PathFinder.find_spec(part, search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
    origin = getattr(spec, "origin", None)
    return origin if isinstance(origin, str) and origin.endswith(".py") else None


def _module_refs(module: ModuleType, files: Any) -> list[Ref]:
    """Every function, class and constant a project module defines (what an imported module
    object may reach through its attributes)."""
    filename = _module_file(module)
    if filename not in files:
        return []
    refs = []
    for name, value in vars(module).items():
        if name.startswith("__") or isinstance(value, ModuleType):
            continue
        if isinstance(value, (FunctionType, type)) and value.__module__ != module.__name__:
            continue  # imported from elsewhere: counted where it is defined, if used there
        refs.append(Ref(value, name, filename))
    return refs


def _module_file(module: ModuleType) -> str | None:
    """A module's file; for a namespace package (no ``__init__.py``), its first directory."""
    filename = getattr(module, "__file__", None)
    if isinstance(filename, str):
        return filename
    path = list(getattr(module, "__path__", None) or [])
    return os.path.join(path[0], "") if path else None


def _closure(fn: FunctionType) -> list[tuple[str, Any]]:
    out = []
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            out.append((name, cell.cell_contents))
        except ValueError:  # an empty cell (a name assigned later)
            pass
    return out


def _wrapped(value: Any) -> FunctionType | None:
    """The function a decorator wrapped (``functools.wraps`` sets ``__wrapped__``)."""
    inner = value
    try:
        for _ in range(100):  # a chain of wrappers, not a cycle
            nxt = getattr(inner, "__wrapped__", None)
            if nxt is None:
                break
            inner = nxt
    except Exception:  # a proxy object whose attributes fail
        return None
    return inner if isinstance(inner, FunctionType) and inner is not value else None


_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def version_text(cls: type) -> str:
    """A class's ``version`` as the code hash sees it: the same text in every process."""
    from .parameter import Parameter

    value = getattr(cls, "version", None)
    if isinstance(value, Parameter):
        return ""  # a parameter named version: its value already counts among the parameters
    return stable_repr(value)


def stable_repr(value: Any) -> str:
    """``repr`` of plain data (an edit changes it); for anything else its type and a repr
    without memory addresses, which would otherwise change the hash on every run."""
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({','.join(stable_repr(v) for v in value)})"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({','.join(sorted(stable_repr(v) for v in value))})"
    if isinstance(value, dict):
        items = sorted(f"{stable_repr(k)}:{stable_repr(v)}" for k, v in value.items())
        return f"dict({','.join(items)})"
    kind = type(value)
    if value is os.environ:  # every shell differs: an environment variable is not code
        return "<os.environ>"
    try:
        text = _ADDRESS.sub("", repr(value))
    except Exception:  # a user's __repr__ that fails: the type alone
        text = ""
    return f"<{kind.__module__}.{kind.__qualname__}>{text}"
