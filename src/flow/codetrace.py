"""Follow a task class's code to the project functions, classes and constants it uses.

Names are resolved statically, as Python would at the moment of hashing: the global names and
attribute chains (``helpers.scale``) a function's bytecode loads, its closure cells, the names in
its decorators and default arguments, and the names a class body uses. Only the project's files
are followed (``flowfile.ProjectFiles``): never installed packages, the standard library or flow.
"""

from __future__ import annotations

import ast
import dis
import functools
import os
import re
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

from .fingerprint import hash_bytes

# A global name and the attributes read from it: ("helpers", ("scale",)) for helpers.scale(x).
Chain = tuple[str, tuple[str, ...]]


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


class Source:
    """One project file, parsed once, docstrings removed: classes by qualified name, functions
    (``def`` and ``lambda``) by the first line of their code (the first decorator's line)."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: dict[str, list[ast.ClassDef]] = {}
        self.functions: dict[int, list[ast.AST]] = {}
        self._dumps: dict[int, str] = {}
        _strip_docstrings(tree)
        stack: list[tuple[str, ast.AST]] = [("", tree)]
        while stack:
            prefix, node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    qual = prefix + child.name
                    self.classes.setdefault(qual, []).append(child)
                    stack.append((qual + ".", child))
                    continue
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                    self.functions.setdefault(first, []).append(child)
                    stack.append((prefix + child.name + ".<locals>.", child))
                    continue
                if isinstance(child, ast.Lambda):
                    self.functions.setdefault(child.lineno, []).append(child)
                stack.append((prefix, child))

    def dump(self, node: ast.AST) -> str:
        """The syntax tree of ``node`` as text: no comments, layout or line numbers."""
        key = id(node)
        if key not in self._dumps:
            self._dumps[key] = ast.dump(node, annotate_fields=False)
        return self._dumps[key]

    def function(self, code: CodeType) -> list[ast.AST]:
        """The ``def`` or ``lambda`` nodes that compiled to ``code``."""
        nodes = self.functions.get(code.co_firstlineno, [])
        if code.co_name == "<lambda>":
            return [n for n in nodes if isinstance(n, ast.Lambda)]
        return [n for n in nodes if getattr(n, "name", None) == code.co_name]


# Parsed files by name, with the hash of the content they were parsed from: a file is parsed
# again only when its content changed (watch mode re-plans in one process).
_SOURCES: dict[str, tuple[str, Source]] = {}


def parse(filename: str) -> Source:
    """The parsed ``filename``, from the cache when its content is unchanged."""
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    digest = hash_bytes(data)
    cached = _SOURCES.get(filename)
    if cached is not None and cached[0] == digest:
        return cached[1]
    try:
        tree = ast.parse(data, filename)
    except (SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    source = Source(tree)
    _SOURCES[filename] = (digest, source)
    return source


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

    def trace(self, cls: type, extra: str = "") -> list[tuple[str, str, str]]:
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
        if isinstance(value, (staticmethod, classmethod, MethodType)):
            value = value.__func__
        if isinstance(value, FunctionType):
            return self._function(value)
        if isinstance(value, type):
            from .task import Task

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
        text = "".join(self.source(code.co_filename).dump(n) for n in nodes) or _code_text(code)
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
        refs = [r for c in chains if (r := resolve(namespace, c, self.files)) is not None]
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
            node = _live_definition(klass, defs, filename)
            text = source.dump(node)
            chains = ast_chains([*node.bases, *node.keywords, *node.decorator_list, *node.body])
        else:  # defined by exec() or otherwise without source: its names still count
            text, chains = ",".join(sorted(vars(klass))), []
        if "version" in vars(klass):
            text += f"\nversion={version_text(klass)}"
        namespace = vars(module) if module is not None else {}
        refs = [r for c in chains if (r := resolve(namespace, c, self.files)) is not None]
        refs += [Ref(base) for base in klass.__bases__]
        for fn in _methods(klass):
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


_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


def code_chains(code: CodeType) -> list[Chain]:
    """The global names ``code`` loads, each with the attributes read from it right after
    (``helpers.scale``), in its nested code objects (lambdas, inner functions) too."""
    chains: list[Chain] = []
    name: str | None = None
    attrs: list[str] = []
    for ins in dis.get_instructions(code):
        if ins.opname in _ATTRS and name is not None:
            attrs.append(ins.argval)
            continue
        if name is not None:
            chains.append((name, tuple(attrs)))
        name, attrs = (ins.argval, []) if ins.opname in _LOADS else (None, [])
    if name is not None:
        chains.append((name, tuple(attrs)))
    for const in code.co_consts:
        if isinstance(const, CodeType):
            chains += code_chains(const)
    return chains


def ast_chains(nodes: Iterable[ast.AST]) -> list[Chain]:
    """The names (and attribute chains) read by code that runs where it is defined: a class body,
    and the decorators and default arguments of a function, but not the function's body."""
    chains: list[Chain] = []
    stack = list(nodes)[::-1]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            chains.append((node.id, ()))
            continue
        if isinstance(node, ast.Attribute):
            attrs: list[str] = []
            base: ast.expr = node
            while isinstance(base, ast.Attribute):
                attrs.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                chains.append((base.id, tuple(reversed(attrs))))
                continue
        children: list[Any]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            decorators = getattr(node, "decorator_list", [])
            children = [*decorators, *args.defaults, *(d for d in args.kw_defaults if d)]
        else:
            children = list(ast.iter_child_nodes(node))
        stack.extend(reversed(children))
    return chains


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
        filename = getattr(value, "__file__", None)
        if filename not in files or attr not in vars(value):
            return None  # an installed module, or a name it makes up on access
        value, label, home = vars(value)[attr], attr, filename
    return None if isinstance(value, ModuleType) else Ref(value, label, home)


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


def _methods(klass: type) -> list[FunctionType]:
    """The functions of a class body: methods, static and class methods, property accessors."""
    out = []
    for value in vars(klass).values():
        value = getattr(value, "__func__", value)
        accessors = [getattr(value, a, None) for a in ("fget", "fset", "fdel")]
        for fn in (value, *accessors):
            if isinstance(fn, FunctionType):
                out.append(fn)
    return out


def _live_definition(klass: type, nodes: list[ast.ClassDef], filename: str) -> ast.ClassDef:
    """Of several ``class`` statements with one qualified name (``if fast: class A ... else:
    class A ...``), the one that made ``klass``: the one whose lines hold its methods' code."""
    if len(nodes) > 1:
        real = os.path.realpath(filename)
        lines = [
            fn.__code__.co_firstlineno
            for fn in _methods(klass)
            if os.path.realpath(fn.__code__.co_filename) == real
        ]
        for node in nodes:
            if any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in lines):
                return node
    return nodes[-1]  # no methods to tell by: the last, which a plain redefinition leaves live


def _code_text(code: CodeType) -> str:
    """A function without source (made by exec): its bytecode, constants and names."""
    consts = [_code_text(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


def _strip_docstrings(tree: ast.AST) -> None:
    """Remove the docstrings of every class and function (they are not code)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]


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
