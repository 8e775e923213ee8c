"""Shell completion, click's side: the completion classes for bash, zsh and fish, the
scripts, and the facts about click's output that let entry.py answer a Tab without click."""

from __future__ import annotations

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

from .complete import candidates, join_equals, locate, task_index
from .quick import PROBES


def complete_tokens(ctx: click.Context, param: Any, incomplete: str) -> list[CompletionItem]:
    """click's ``shell_complete`` for the TASK/PARAM words: tasks, ``name=``, values."""
    return [CompletionItem(v, help=h or None) for v, h in _answer(ctx, incomplete)]


def _answer(ctx: click.Context, incomplete: str) -> list[tuple[str, str | None]]:
    try:
        params = ctx.params
        # A module by name (-m) has nothing to key an index on.
        found = None if params.get("module") else locate(params.get("flowfile"), params.get("directory"))
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
        {"name": p.name, "multiple": p.multiple, "opts": [*p.opts, *p.secondary_opts], "help": p.help}
        for p in cli.get_params(ctx)
        if isinstance(p, click.Option) and not p.hidden
    ]
    formats = {
        shell: [cls(cli, {}, "flow", "_FLOW_COMPLETE").format_completion(item) for item in _probes()]
        for shell, cls in (("bash", BashComplete), ("zsh", ZshComplete), ("fish", FishComplete))
    }
    import click.shell_completion as module

    st = os.stat(module.__file__ or "")
    # An upgrade of click replaces this file: the quick path then leaves the answer to click.
    return {"options": options, "formats": formats, "source": [module.__file__, st.st_mtime_ns]}


def _probes() -> list[CompletionItem]:
    return [CompletionItem(value, type=kind, help=help) for kind, value, help in PROBES]
