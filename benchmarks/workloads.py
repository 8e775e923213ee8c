"""Generate the benchmark workloads (W1 fan-in, W2 chain, W3 make-style) for each tool.

Every tool gets the same files on disk and an idiomatic build description of the same graph:
a ``Flowfile.py`` for flow, a ``Makefile`` for make, a ``dodo.py`` for doit, a script calling
``luigi.build(..., local_scheduler=True)`` for Luigi, and ``task_*.py`` for pytask.
Only the standard library is used here.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass

WORKLOADS = ("w1", "w1f", "w2", "w3")
DESCRIPTIONS = {
    "w1": "fan-in: N sources -> N square tasks -> 1 sum",
    "w1f": "W1 written as a Makefile replacement: each square task requires flow.Files(its source)"
    " (flow only; make and doit run their W1 files)",
    "w2": "chain: seed -> N tasks in a line, each reads the previous output",
    "w3": "make-style: N `cp src/i.c obj/i.o` shell steps + `cat obj/*.o > app`",
}
# What each tool leaves behind besides the outputs: removed before every full build.
STATE = {
    "flow": [".flow"],
    "make": [],
    "doit": [".doit.db", ".doit.db.db", ".doit.db.dat", ".doit.db.dir", ".doit.db.bak"],
    "luigi": [],
    "pytask": [".pytask"],
}
OUTPUTS = ["out", "obj", "app", "total.txt"]


@dataclass
class Workload:
    """A generated workload in ``root``: how to run it, clean it, and edit one source."""

    name: str
    tool: str
    n: int
    root: str

    def clean(self) -> None:
        """Remove the outputs and the tool's own state: the next run is a full build."""
        for rel in OUTPUTS + STATE[self.tool]:
            path = os.path.join(self.root, rel)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
        if self.name == "w3":  # make needs obj/ to exist; so do the others, for fairness
            os.makedirs(os.path.join(self.root, "obj"))

    def edit_source(self, k: int) -> str:
        """Change the content of one source (different on every call); return its path."""
        if self.name in ("w1", "w1f"):
            rel = f"src/{self.n // 2}.txt"
            content = f"{self.n // 2 + 1000 + k}\n"
        elif self.name == "w2":
            rel = "src/seed.txt"
            content = f"{1000 + k}\n"
        else:
            rel = f"src/{self.n // 2}.c"
            content = f"int f{self.n // 2}(void) {{ return {1000 + k}; }}\n"
        path = os.path.join(self.root, rel)
        with open(path, "w") as f:
            f.write(content)
        return rel


def generate(name: str, tool: str, n: int, root: str) -> Workload:
    """Write the sources and the tool's build description for workload ``name`` into ``root``."""
    os.makedirs(os.path.join(root, "src"), exist_ok=True)
    if name in ("w1", "w1f"):
        for i in range(n):
            _write(root, f"src/{i}.txt", f"{i}\n")
    elif name == "w2":
        _write(root, "src/seed.txt", "0\n")
    else:
        for i in range(n):
            _write(root, f"src/{i}.c", f"int f{i}(void) {{ return {i}; }}\n")
    for filename, template in TEMPLATES[(name, tool)].items():
        _write(root, filename, textwrap.dedent(template).lstrip().replace("@N@", str(n)))
    w = Workload(name, tool, n, root)
    w.clean()
    return w


def supports(name: str, tool: str) -> bool:
    return (name, tool) in TEMPLATES


def _write(root: str, rel: str, text: str) -> None:
    with open(os.path.join(root, rel), "w") as f:
        f.write(text)


def _t(*pieces: str) -> str:
    """Join template pieces, each dedented on its own."""
    return "\n\n\n".join(textwrap.dedent(p).strip("\n") for p in pieces) + "\n"


# ---------------------------------------------------------------------------------------------
# W1 fan-in. flow and Luigi share the task code: `import flow as luigi` ports it.

_LUIGI_STYLE_W1 = """
    N = @N@


    class Source(luigi.ExternalTask):
        i = luigi.IntParameter()

        def output(self):
            return luigi.LocalTarget(f"src/{self.i}.txt")


    class Square(luigi.Task):
        i = luigi.IntParameter()

        def requires(self):
            return Source(i=self.i)

        def output(self):
            return luigi.LocalTarget(f"out/{self.i}.txt")

        def run(self):
            with self.input().open() as f:
                x = int(f.read())
            with self.output().open("w") as f:
                f.write(f"{x * x}\\n")


    class Sum(luigi.Task):
        def requires(self):
            return [Square(i=i) for i in range(N)]

        def output(self):
            return luigi.LocalTarget("total.txt")

        def run(self):
            total = 0
            for target in self.input():
                with target.open() as f:
                    total += int(f.read())
            with self.output().open("w") as f:
                f.write(f"{total}\\n")
"""

_LUIGI_MAIN = """

    if __name__ == "__main__":
        workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
        ok = luigi.build([ROOT], local_scheduler=True, workers=workers, log_level="WARNING")
        sys.exit(0 if ok else 1)
"""

_W1_FLOW = _t("import flow as luigi", _LUIGI_STYLE_W1, "default = Sum")
# W1F: what people write when replacing a Makefile: each task requires the file it reads.
_W1F_FLOW = (
    _W1_FLOW.replace("return Source(i=self.i)", 'return luigi.Files(f"src/{self.i}.txt")')
    .replace("with self.input().open() as f:", "with self.input()[0].open() as f:")
)
_W1_LUIGI = _t("import sys\n\nimport luigi", _LUIGI_STYLE_W1, "ROOT = Sum()", _LUIGI_MAIN)

_W1_MAKE = """
    # No built-in implicit rules: GNU make would otherwise try RCS/SCCS/suffix rules for every
    # file (35x slower at N=10,000 here); large generated Makefiles turn them off.
    MAKEFLAGS += --no-builtin-rules
    .SUFFIXES:

    SRCS := $(wildcard src/*.txt)
    OUTS := $(SRCS:src/%.txt=out/%.txt)

    total.txt: $(OUTS)
    \tcat $^ | awk '{ s += $$1 } END { print s }' > $@

    out/%.txt: src/%.txt | out
    \tread x < $<; echo $$((x * x)) > $@

    out:
    \tmkdir -p out
"""

_W1_DOIT = """
    import os

    N = @N@


    def square(i):
        with open(f"src/{i}.txt") as f:
            x = int(f.read())
        os.makedirs("out", exist_ok=True)
        with open(f"out/{i}.txt", "w") as f:
            f.write(f"{x * x}\\n")


    def total():
        s = 0
        for i in range(N):
            with open(f"out/{i}.txt") as f:
                s += int(f.read())
        with open("total.txt", "w") as f:
            f.write(f"{s}\\n")


    def task_square():
        for i in range(N):
            yield {
                "name": str(i),
                "file_dep": [f"src/{i}.txt"],
                "targets": [f"out/{i}.txt"],
                "actions": [(square, [i])],
            }


    def task_sum():
        return {
            "file_dep": [f"out/{i}.txt" for i in range(N)],
            "targets": ["total.txt"],
            "actions": [total],
        }
"""

_W1_PYTASK = """
    from pathlib import Path
    from typing import Annotated

    from pytask import Product, task

    N = @N@
    ROOT = Path(__file__).parent

    for i in range(N):

        @task(id=str(i))
        def task_square(
            src: Path = ROOT / f"src/{i}.txt",
            out: Annotated[Path, Product] = ROOT / f"out/{i}.txt",
        ) -> None:
            x = int(src.read_text())
            out.parent.mkdir(exist_ok=True)
            out.write_text(f"{x * x}\\n")


    def task_sum(
        paths: list[Path] = [ROOT / f"out/{i}.txt" for i in range(N)],
        out: Annotated[Path, Product] = ROOT / "total.txt",
    ) -> None:
        out.write_text(f"{sum(int(p.read_text()) for p in paths)}\\n")
"""

# ---------------------------------------------------------------------------------------------
# W2 chain: Step(0) reads src/seed.txt, Step(i) reads Step(i - 1)'s output and adds one.

_LUIGI_STYLE_W2 = """
    N = @N@


    class Seed(luigi.ExternalTask):
        def output(self):
            return luigi.LocalTarget("src/seed.txt")


    class Step(luigi.Task):
        i = luigi.IntParameter(default=N - 1)

        def requires(self):
            return Step(i=self.i - 1) if self.i > 0 else Seed()

        def output(self):
            return luigi.LocalTarget(f"out/{self.i}.txt")

        def run(self):
            with self.input().open() as f:
                x = int(f.read())
            with self.output().open("w") as f:
                f.write(f"{x + 1}\\n")
"""

_W2_FLOW = _t("import flow as luigi", _LUIGI_STYLE_W2, "default = Step")
_W2_LUIGI = _t("import sys\n\nimport luigi", _LUIGI_STYLE_W2, "ROOT = Step()", _LUIGI_MAIN)

_W2_DOIT = """
    import os

    N = @N@


    def step(i):
        with open(f"out/{i - 1}.txt" if i else "src/seed.txt") as f:
            x = int(f.read())
        os.makedirs("out", exist_ok=True)
        with open(f"out/{i}.txt", "w") as f:
            f.write(f"{x + 1}\\n")


    def task_step():
        for i in range(N):
            yield {
                "name": str(i),
                "file_dep": [f"out/{i - 1}.txt" if i else "src/seed.txt"],
                "targets": [f"out/{i}.txt"],
                "actions": [(step, [i])],
            }
"""

_W2_PYTASK = """
    from pathlib import Path
    from typing import Annotated

    from pytask import Product, task

    N = @N@
    ROOT = Path(__file__).parent

    for i in range(N):

        @task(id=str(i))
        def task_step(
            src: Path = ROOT / (f"out/{i - 1}.txt" if i else "src/seed.txt"),
            out: Annotated[Path, Product] = ROOT / f"out/{i}.txt",
        ) -> None:
            out.parent.mkdir(exist_ok=True)
            out.write_text(f"{int(src.read_text()) + 1}\\n")
"""


def _w2_make(n: int) -> str:
    """A chain cannot be a pattern rule (i - 1), so the Makefile lists every rule, as generated
    Makefiles do."""
    lines = ["MAKEFLAGS += --no-builtin-rules", ".SUFFIXES:", "", f"out/{n - 1}.txt:", ""]
    lines += ["out/0.txt: src/seed.txt | out", "\tread x < $<; echo $$((x + 1)) > $@", ""]
    for i in range(1, n):
        lines += [f"out/{i}.txt: out/{i - 1}.txt", "\tread x < $<; echo $$((x + 1)) > $@", ""]
    lines += ["out:", "\tmkdir -p out", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# W3 make-style: shell steps. flow's compile step depends on the source through flow.Files.

_W3_FLOW = """
    import flow

    N = @N@


    class Compile(flow.Task):
        i = flow.IntParameter()

        def requires(self):
            return flow.Files(f"src/{self.i}.c")

        def output(self):
            return flow.LocalTarget(f"obj/{self.i}.o")

        def run(self):
            flow.sh(f"cp src/{self.i}.c obj/{self.i}.o")


    class Link(flow.Task):
        def requires(self):
            return [Compile(i=i) for i in range(N)]

        def output(self):
            return flow.LocalTarget("app")

        def run(self):
            flow.sh("cat obj/*.o > app")


    default = Link
"""

_W3_MAKE = """
    # No built-in implicit rules: GNU make would otherwise try RCS/SCCS/suffix rules for every
    # file (35x slower at N=10,000 here); large generated Makefiles turn them off.
    MAKEFLAGS += --no-builtin-rules
    .SUFFIXES:

    SRCS := $(wildcard src/*.c)
    OBJS := $(SRCS:src/%.c=obj/%.o)

    app: $(OBJS)
    \tcat obj/*.o > app

    obj/%.o: src/%.c
    \tcp $< $@
"""

_W3_DOIT = """
    N = @N@


    def task_compile():
        for i in range(N):
            yield {
                "name": str(i),
                "file_dep": [f"src/{i}.c"],
                "targets": [f"obj/{i}.o"],
                "actions": [f"cp src/{i}.c obj/{i}.o"],
            }


    def task_link():
        return {
            "file_dep": [f"obj/{i}.o" for i in range(N)],
            "targets": ["app"],
            "actions": ["cat obj/*.o > app"],
        }
"""


TEMPLATES: dict[tuple[str, str], dict[str, str]] = {
    ("w1", "flow"): {"Flowfile.py": _W1_FLOW},
    ("w1", "make"): {"Makefile": _W1_MAKE},
    ("w1", "doit"): {"dodo.py": _W1_DOIT},
    ("w1", "luigi"): {"pipeline.py": _W1_LUIGI},
    ("w1", "pytask"): {"task_w1.py": _W1_PYTASK},
    ("w1f", "flow"): {"Flowfile.py": _W1F_FLOW},
    ("w1f", "make"): {"Makefile": _W1_MAKE},
    ("w1f", "doit"): {"dodo.py": _W1_DOIT},
    ("w2", "flow"): {"Flowfile.py": _W2_FLOW},
    ("w2", "make"): {},  # written by generate_w2_make
    ("w2", "doit"): {"dodo.py": _W2_DOIT},
    ("w2", "luigi"): {"pipeline.py": _W2_LUIGI},
    ("w2", "pytask"): {"task_w2.py": _W2_PYTASK},
    ("w3", "flow"): {"Flowfile.py": _W3_FLOW},
    ("w3", "make"): {"Makefile": _W3_MAKE},
    ("w3", "doit"): {"dodo.py": _W3_DOIT},
}


def make_workload(name: str, tool: str, n: int, root: str) -> Workload:
    """generate(), plus the W2 Makefile whose rules are listed one by one."""
    w = generate(name, tool, n, root)
    if (name, tool) == ("w2", "make"):
        _write(root, "Makefile", _w2_make(n))
    return w
