"""--dask against -j 2: a CPU-bound graph (8 tasks of ~1 s) and 1,000 tiny tasks, fan-in.

Rows: ``flow -j 2`` (the process pool); ``flow --dask local:2`` (a LocalCluster started and
stopped by each run, as a user types it); ``flow --dask tcp://…`` against a scheduler and two
single-threaded workers started once here (what an existing cluster costs per task). The
per-task overhead of a mode is (full build of N tiny tasks - full build of 1) / (N - 1). A last
pair of rows times Dask alone (no flow) on N no-op futures: all submitted up front, and at most
four in flight as flow's loop keeps them: the most that submitting a future graph up front could
save. Needs flow and dask[distributed] installed in this Python's environment.

    python benchmarks/daskbench.py [--runs 3] [--tiny 1000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

FLOW = os.path.join(os.path.dirname(sys.executable), "flow")
DASK = os.path.join(os.path.dirname(sys.executable), "dask")

FLOWFILE = '''
import flow

class Leaf(flow.Task):
    i = flow.IntParameter()
    work = flow.IntParameter(default=0)  # busy-loop iterations: ~1 s at 20,000,000 here
    def output(self):
        return flow.LocalTarget(f"out/leaf{self.i}.txt")
    def run(self):
        x = 0
        for k in range(self.work):
            x += k
        with self.output().open("w") as f:
            f.write(str(self.i))

class Sum(flow.Task):
    n = flow.IntParameter()
    work = flow.IntParameter(default=0)
    def requires(self):
        return [Leaf(i=i, work=self.work) for i in range(self.n)]
    def output(self):
        return flow.LocalTarget("out/sum.txt")
    def run(self):
        total = sum(int(t.open().read()) for t in self.input())
        with self.output().open("w") as f:
            f.write(str(total))
'''


def timed(root: str, *args: str) -> float:
    """One full build (outputs and .flow/ removed first); its wall time."""
    for name in ("out", ".flow"):
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([FLOW, "-q", *args], cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"flow {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed


def median(root: str, runs: int, *args: str) -> float:
    return statistics.median(timed(root, *args) for _ in range(runs))


def start_cluster(where: str) -> tuple[str, list[subprocess.Popen[bytes]]]:
    file = os.path.join(where, "scheduler.json")
    procs = []
    log = open(os.path.join(where, "cluster.log"), "wb")  # noqa: SIM115
    common = dict(stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", file],
            **common,  # type: ignore[call-overload]
        )
    )
    while not (os.path.exists(file) and "address" in open(file).read()):
        time.sleep(0.05)
    address = json.load(open(file))["address"]
    procs.append(
        subprocess.Popen(
            [DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"]
            + ["--host", "127.0.0.1"],
            **common,  # type: ignore[call-overload]
        )
    )
    import distributed

    with distributed.Client(address) as client:
        client.wait_for_workers(2, timeout=60)
    return address, procs


def raw_dask(address: str, n: int, window: int | None) -> float:
    """N no-op futures on the cluster: all at once, or ``window`` in flight at a time."""
    import distributed

    with distributed.Client(address) as client:
        client.submit(int, 0, pure=False).result()  # connection warm
        start = time.perf_counter()
        if window is None:
            distributed.wait([client.submit(int, i, pure=False) for i in range(n)])
        else:
            pending: set = set()
            for i in range(n):
                if len(pending) >= window:
                    done = distributed.wait(pending, return_when="FIRST_COMPLETED").done
                    pending -= done
                pending.add(client.submit(int, i, pure=False))
            distributed.wait(pending)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tiny", type=int, default=1000)
    ap.add_argument("--work", type=int, default=20_000_000, help="busy-loop size of a CPU task")
    ap.add_argument("--out")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="flow-dask-bench-")
    with open(os.path.join(root, "Flowfile.py"), "w") as f:
        f.write(FLOWFILE)
    address, procs = start_cluster(root)
    try:
        rows = measure(root, address, args)
        rows.append(("Dask alone: tiny, all up front", raw_dask(address, args.tiny, None)))
        rows.append(("Dask alone: tiny, 4 in flight", raw_dask(address, args.tiny, 4)))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(root, ignore_errors=True)
    report(rows, args)


def measure(root: str, address: str, args: argparse.Namespace) -> list[tuple[str, float]]:
    modes = {"-j 2": ["-j", "2"], "--dask local:2": ["--dask", "local:2"]}
    modes["--dask tcp:// (running)"] = ["--dask", address]
    rows = []
    for name, opts in modes.items():
        cpu = median(root, args.runs, *opts, "Sum", "n=8", f"work={args.work}")
        one = median(root, args.runs, *opts, "Sum", "n=1")
        many = median(root, args.runs, *opts, "Sum", f"n={args.tiny}")
        rows += [
            (f"{name}: 8 CPU tasks", cpu),
            (f"{name}: 1 tiny task", one),
            (f"{name}: {args.tiny} tiny tasks", many),
            (f"{name}: per tiny task (ms)", 1000 * (many - one) / (args.tiny - 1)),
        ]
    cpu_one = median(root, args.runs, "-j", "1", "Sum", "n=1", f"work={args.work}")
    rows.append(("-j 1: 1 CPU task (its length)", cpu_one))
    return rows


def report(rows: list[tuple[str, float]], args: argparse.Namespace) -> None:
    lines = [
        f"runs: median of {args.runs}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs",
        "",
        "| what | seconds (or ms where said) |",
        "|---|---:|",
    ]
    lines += [f"| {what} | {value:.3f} |" for what, value in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
