"""The no-op cost of code tracing: a Flowfile whose tasks call into ten project modules.

    python benchmarks/codetrace.py [--modules 10] [--functions 40] [--spare 0] [--tasks 1000]
                                   [--runs 5]

Generates a project in a temp directory: ``mod0.py`` … ``mod9.py``, each with FUNCTIONS helper
functions (each calling the next, reading module constants, and calling the last helper of the
next module) and SPARE functions no task calls, and a ``Flowfile.py`` of ten task classes (one
per module, each reaching about 70 functions and constants) with TASKS instances in all. It
builds once, then times ``flow`` (a no-op) RUNS times and prints the median, min and max wall
time and the median CPU time (steadier on a loaded machine). Only the standard library is used.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)


def module_source(m: int, modules: int, functions: int, spare: int = 0) -> str:
    nxt = (m + 1) % modules
    lines = [f"import mod{nxt}", "", f"SCALE = {m + 1}", f"NAMES = {list(range(20))!r}", ""]
    for f in range(functions):
        call = f"f{f + 1}(x)" if f + 1 < functions else "x"
        lines += [
            f"def f{f}(x):",
            f'    """Helper {f} of module {m}."""',
            f"    y = {call} + SCALE  # a comment",
            "    if x > 1000:",
            f"        return mod{nxt}.f{functions - 1}(y)",
            "    return y * len(NAMES)",
            "",
        ]
    for f in range(spare):  # never called: an edit to them is no change, and costs nothing
        lines += [f"def spare{f}(x):", f"    return x + {f}", ""]
    return "\n".join(lines) + "\n"


def flowfile_source(modules: int, tasks: int) -> str:
    per = max(1, tasks // modules)
    lines = ["import flow", *(f"import mod{m}" for m in range(modules)), ""]
    names = []
    for m in range(modules):
        name = f"Work{m}"
        names.append(name)
        lines += [
            f"class {name}(flow.Task):",
            "    i = flow.IntParameter()",
            "    def output(self):",
            f'        return flow.LocalTarget(f"out/{m}/{{self.i}}.txt")',
            "    def run(self):",
            "        with self.output().open('w') as f:",
            f"            f.write(str(mod{m}.f0(self.i)))",
            "",
        ]
    lines += [
        "class All(flow.WrapperTask):",
        "    def requires(self):",
        f"        return [cls(i=i) for cls in ({', '.join(names)},) for i in range({per})]",
        "",
        "default = All",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", type=int, default=10)
    p.add_argument("--functions", type=int, default=40)
    p.add_argument("--spare", type=int, default=0, help="functions per module no task calls")
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    flow = os.path.join(BIN, "flow")
    with tempfile.TemporaryDirectory() as root:
        for m in range(args.modules):
            with open(os.path.join(root, f"mod{m}.py"), "w") as f:
                f.write(module_source(m, args.modules, args.functions, args.spare))
        with open(os.path.join(root, "Flowfile.py"), "w") as f:
            f.write(flowfile_source(args.modules, args.tasks))
        subprocess.run([flow, "-q"], cwd=root, check=True)
        times, cpus = [], []
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run([flow], cwd=root, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if "up to date" not in proc.stdout + proc.stderr:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
    print(
        f"no-op, {args.modules} modules x {args.functions} functions (+{args.spare} unused), "
        f"{args.tasks} tasks: "
        f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
        f"max {max(times):.3f} s; CPU (user + system) median {statistics.median(cpus):.3f} s "
        f"({args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
