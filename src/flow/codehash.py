"""Code hashes of task classes: their own code and that of the project classes they inherit from."""

from __future__ import annotations

import ast
import os
import re
import sys
from typing import Any

from .fingerprint import hash_bytes
from .parameter import Parameter


class CodeHasher:
    """Hashes of task classes: their own code and that of the project classes they inherit from.

    Comments, blank lines and docstrings do not count (the hash is of the syntax tree), and a class
    attribute ``version`` is folded in (a Parameter named version is not: it is a parameter).
    Classes from outside the project (flow's own, installed packages) do not count, so upgrading
    a library does not rebuild everything.
    """

    def __init__(self, project_root: str) -> None:
        from .flowfile import project_files

        # The root, and the directories of the Flowfiles loaded (wherever --module, -f or a
        # symlink put them): the Flowfile and the modules beside it are always project code.
        self.files = project_files(project_root)
        self._by_class: dict[type, str] = {}
        self._trees: dict[str, dict[str, list[ast.ClassDef]]] = {}

    def __call__(self, cls: type) -> str:
        try:
            return self._by_class[cls]
        except KeyError:
            pass
        parts = []
        for klass in cls.__mro__:
            source = self._class_source(klass)
            if source is not None:
                parts.append(f"{klass.__qualname__}:{source}")
        parts.append(f"version={_version_text(cls)}")
        digest = hash_bytes("\n".join(parts).encode())
        self._by_class[cls] = digest
        return digest

    def is_project_file(self, filename: str | None) -> bool:
        return filename in self.files

    def _class_source(self, klass: type) -> str | None:
        module = sys.modules.get(klass.__module__)
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or not self.is_project_file(filename):
            return None
        nodes = self._classes_in(filename).get(klass.__qualname__)
        if not nodes:  # defined by exec() or otherwise without source: its names still count
            return ",".join(sorted(vars(klass)))
        return ast.dump(_live_definition(klass, nodes, filename), annotate_fields=False)

    def _classes_in(self, filename: str) -> dict[str, list[ast.ClassDef]]:
        try:
            return self._trees[filename]
        except KeyError:
            pass
        try:
            with open(filename, "rb") as f:
                module = ast.parse(f.read(), filename)
        except (OSError, SyntaxError, ValueError):
            module = ast.Module(body=[], type_ignores=[])
        found: dict[str, list[ast.ClassDef]] = {}
        stack: list[tuple[str, ast.AST]] = [("", module)]
        while stack:
            prefix, node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    qual = prefix + child.name
                    _strip_docstrings(child)
                    found.setdefault(qual, []).append(child)
                    stack.append((qual + ".", child))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    stack.append((prefix + child.name + ".<locals>.", child))
                else:
                    stack.append((prefix, child))
        self._trees[filename] = found
        return found


def _live_definition(klass: type, nodes: list[ast.ClassDef], filename: str) -> ast.ClassDef:
    """Of several ``class`` statements with one qualified name (``if fast: class A ... else:
    class A ...``), the one that made ``klass``: the one whose lines hold its methods' code."""
    if len(nodes) > 1:
        real = os.path.realpath(filename)
        lines = [
            c.co_firstlineno for c in _own_code(klass) if os.path.realpath(c.co_filename) == real
        ]
        for node in nodes:
            if any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in lines):
                return node
    return nodes[-1]  # no methods to tell by: the last, which a plain redefinition leaves live


def _own_code(klass: type) -> list[Any]:
    """The code objects of the functions defined in a class's body (methods, static and class
    methods, property accessors)."""
    import inspect  # only for a class defined twice: keep it off every start

    codes = []
    for value in vars(klass).values():
        value = inspect.unwrap(getattr(value, "__func__", value))  # staticmethod, @cache, ...
        for fn in (value, *(getattr(value, a, None) for a in ("fget", "fset", "fdel"))):
            code = getattr(fn, "__code__", None)
            if code is not None:
                codes.append(code)
    return codes


_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _version_text(cls: type) -> str:
    """A class's ``version`` as the code hash sees it: the same text in every process."""
    value = getattr(cls, "version", None)
    if isinstance(value, Parameter):
        return ""  # a parameter named version: its value already counts among the parameters
    return _stable_repr(value)


def _stable_repr(value: Any) -> str:
    """``repr`` of plain data (a bump by hand changes it); for anything else its type and a repr
    without memory addresses, which would otherwise change the hash on every run."""
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({','.join(_stable_repr(v) for v in value)})"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({','.join(sorted(_stable_repr(v) for v in value))})"
    if isinstance(value, dict):
        items = sorted(f"{_stable_repr(k)}:{_stable_repr(v)}" for k, v in value.items())
        return f"dict({','.join(items)})"
    kind = type(value)
    try:
        text = _ADDRESS.sub("", repr(value))
    except Exception:  # a user's __repr__ that fails: the type alone
        text = ""
    return f"<{kind.__module__}.{kind.__qualname__}>{text}"


def _strip_docstrings(cls_node: ast.ClassDef) -> None:
    """Remove the docstrings of a class and of everything inside it (they are not code)."""
    for node in ast.walk(cls_node):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
