"""Project source as the code hash reads it: syntax trees without docstrings, and the global
names a function's bytecode loads."""

from __future__ import annotations

import ast
import dis
import os
import sys
import textwrap
from collections.abc import Iterable
from types import CodeType, FunctionType
from typing import Any

from .fingerprint import hash_bytes

# A global name and the attributes read from it: ("helpers", ("scale",)) for helpers.scale(x).
Chain = tuple[str, tuple[str, ...]]


class Source:
    """One project file as the code hash reads it, docstrings removed: a function alone, parsed
    from its own lines; classes (and what a function's lines cannot give) from the whole file,
    parsed once, the first time it is needed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._lines: list[str] | None = None
        self._tree: _Tree | None = None
        self._functions: dict[tuple[int, str], list[ast.AST]] = {}
        self._dumps: dict[ast.AST, str] = {}

    @property
    def classes(self) -> dict[str, list[ast.ClassDef]]:
        """Class statements by qualified name (``Outer.Inner``, ``make.<locals>.Made``)."""
        return self._whole().classes

    def function(self, code: CodeType) -> list[ast.AST]:
        """The ``def`` or ``lambda`` nodes that compiled to ``code``."""
        key = (code.co_firstlineno, code.co_name)
        if key not in self._functions:
            self._functions[key] = self._alone(code) or self._whole().function(code)
        return self._functions[key]

    def dump(self, node: ast.AST) -> str:
        """The syntax tree of ``node`` as text: no comments, layout or line numbers."""
        if node not in self._dumps:  # keyed by the node itself (kept alive), not its id
            self._dumps[node] = ast.dump(node, annotate_fields=False)
        return self._dumps[node]

    def dump_all(self) -> str:
        """The whole file's syntax tree as text, docstrings removed."""
        return self.dump(self._whole().module)

    def _alone(self, code: CodeType) -> list[ast.AST]:
        """A ``def`` parsed from its own lines, from the first decorator to the last line that
        has code (what follows has none, so cannot change what it does); [] when those lines
        are not a ``def`` by themselves (a lambda, an odd indentation)."""
        if code.co_name == "<lambda>":
            return []
        if self._lines is None:
            self._lines = self.data.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        text = "".join(self._lines[code.co_firstlineno - 1 : _last_line(code)])
        try:
            tree = ast.parse(textwrap.dedent(text))
        except (SyntaxError, ValueError):
            return []
        body = tree.body
        if len(body) != 1 or getattr(body[0], "name", None) != code.co_name:
            return []
        _strip_docstrings(tree)
        return [body[0]]

    def _whole(self) -> _Tree:
        if self._tree is None:
            try:
                module = ast.parse(self.data)
            except (SyntaxError, ValueError):
                module = ast.Module(body=[], type_ignores=[])
            self._tree = _Tree(module)
        return self._tree


class _Tree:
    """A whole parsed file: classes by qualified name, functions (``def`` and ``lambda``) by the
    first line of their code (the first decorator's line)."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: dict[str, list[ast.ClassDef]] = {}
        self.functions: dict[int, list[ast.AST]] = {}
        self.module = tree
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

    def function(self, code: CodeType) -> list[ast.AST]:
        nodes = self.functions.get(code.co_firstlineno, [])
        if code.co_name == "<lambda>":
            return [n for n in nodes if isinstance(n, ast.Lambda)]
        return [n for n in nodes if getattr(n, "name", None) == code.co_name]


def _last_line(code: CodeType) -> int:
    """The last line any instruction of ``code`` (or of the code nested in it) comes from."""
    last = code.co_firstlineno
    for _, end, _, _ in code.co_positions():
        if end is not None and end > last:
            last = end
    for const in code.co_consts:
        if isinstance(const, CodeType):
            last = max(last, _last_line(const))
    return last


# Files by name, with the hash of the content they were read from: a file is parsed again only
# when its content changed (watch mode re-plans in one process).
_SOURCES: dict[str, tuple[str, Source]] = {}


def parse(filename: str) -> Source:
    """The source of ``filename``, from the cache when its content is unchanged."""
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    digest = hash_bytes(data)
    cached = _SOURCES.get(filename)
    if cached is not None and cached[0] == digest:
        return cached[1]
    source = Source(data)
    _SOURCES[filename] = (digest, source)
    return source


_OP = dis.opmap
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_CACHE = _OP.get("CACHE", -1)
# The loads that start a chain and those that extend it, with how far to shift the argument to
# get the index into co_names: its low bit is a flag for LOAD_GLOBAL (3.11 on) and LOAD_ATTR
# (3.12 on). LOAD_METHOD is 3.11's (a pseudo-op, never in the bytecode, after).
_STARTS = {_OP["LOAD_GLOBAL"]: 1, _OP["LOAD_NAME"]: 0}
_LOAD_CONST, _IMPORT_NAME = _OP["LOAD_CONST"], _OP["IMPORT_NAME"]
# A chain for an import inside a function: IMPORTED + "LEVEL:MODULE", then the names it takes
# (``from helpers import scale``), or "*" for the whole module (``import helpers as h``).
IMPORTED = "\0import:"
_EXTENDS = {_OP["LOAD_ATTR"]: 1 if sys.version_info >= (3, 12) else 0}
if "LOAD_METHOD" in _OP:
    _EXTENDS[_OP["LOAD_METHOD"]] = 0


def code_chains(code: CodeType) -> list[Chain]:
    """The global names ``code`` loads, each with the attributes read from it right after
    (``helpers.scale``), in its nested code objects (lambdas, inner functions) too.

    Read from the raw bytecode (what ``dis.get_instructions`` would say, at a fraction of the
    cost: this runs for every function a task reaches, on every run)."""
    chains: list[Chain] = []
    names, raw = code.co_names, code.co_code
    name: str | None = None
    attrs: list[str] = []
    extended = 0
    consts: list[Any] = [None, None]  # the last two constants loaded: an import's level, names
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | extended
        if op == _EXTENDED_ARG:
            extended = arg << 8
            continue
        extended = 0
        if op == _CACHE:
            continue
        if op == _LOAD_CONST:
            consts = [consts[1], code.co_consts[arg]]
        elif op == _IMPORT_NAME:
            level, taken = consts
            chains.append(_import_chain(names[arg], level, taken))
        if name is not None:
            if op in _EXTENDS:
                attrs.append(names[arg >> _EXTENDS[op]])
                continue
            chains.append((name, tuple(attrs)))
        name, attrs = (names[arg >> _STARTS[op]], []) if op in _STARTS else (None, [])
    if name is not None:
        chains.append((name, tuple(attrs)))
    for const in code.co_consts:
        if isinstance(const, CodeType):
            chains += code_chains(const)
    return chains


def _import_chain(module: str, level: Any, taken: Any) -> Chain:
    """``from .mod import a, b`` (level 1, names a, b) or ``import mod`` (names: the module)."""
    level = level if isinstance(level, int) else 0
    names = tuple(taken) if isinstance(taken, tuple) and "*" not in taken else ("*",)
    return (f"{IMPORTED}{level}:{module}", names)


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


def methods(klass: type) -> list[FunctionType]:
    """The functions of a class body: methods, static and class methods, property accessors."""
    out = []
    for value in vars(klass).values():
        value = getattr(value, "__func__", value)
        accessors = [getattr(value, a, None) for a in ("fget", "fset", "fdel")]
        for fn in (value, *accessors):
            if isinstance(fn, FunctionType):
                out.append(fn)
    return out


def live_definition(klass: type, nodes: list[ast.ClassDef], filename: str) -> ast.ClassDef:
    """Of several ``class`` statements with one qualified name (``if fast: class A ... else:
    class A ...``), the one that made ``klass``: the one whose lines hold its methods' code."""
    if len(nodes) > 1:
        real = os.path.realpath(filename)
        lines = [
            fn.__code__.co_firstlineno
            for fn in methods(klass)
            if os.path.realpath(fn.__code__.co_filename) == real
        ]
        for node in nodes:
            if any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in lines):
                return node
    return nodes[-1]  # no methods to tell by: the last, which a plain redefinition leaves live


def code_text(code: CodeType) -> str:
    """A function without source (made by exec): its bytecode, constants and names."""
    consts = [code_text(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _strip_docstrings(tree: ast.AST) -> None:
    """Remove the docstrings of every class and function (they are not code). Only statements
    can hold a ``def`` or ``class``, so expressions are not walked (ast.walk would be slow)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        body = getattr(node, "body", None)
        if (
            isinstance(node, _DEFS)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        for block in _BLOCKS:
            children = getattr(node, block, None)
            if isinstance(children, list):
                stack.extend(c for c in children if isinstance(c, ast.AST))
