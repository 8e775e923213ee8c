"""Save-to-rebuild-start latency of `flow -w` on a small graph (median of N edits).

Usage: python benchmarks/watch.py [--edits 10] [--polling]

It writes a Flowfile (an input file feeding a chain of three tasks) into a temporary directory,
starts `flow -w` there, then edits the input N times. For each edit it measures the time from
the write to the watcher's "flow: in.txt changed" line, printed just before the re-plan starts,
and waits for the rebuild to finish before the next edit. The latency includes the debounce
(flow.watch.QUIET): a burst of events ends only after that long without another.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

FLOWFILE = textwrap.dedent(
    """
    import flow

    class Source(flow.ExternalTask):
        def output(self):
            return flow.LocalTarget("in.txt")

    class Step(flow.Task):
        k = flow.IntParameter()
        def requires(self):
            return Step(k=self.k - 1) if self.k > 1 else Source()
        def output(self):
            return flow.LocalTarget(f"out/step{self.k}.txt")
        def run(self):
            with self.input().open() as f, self.output().open("w") as g:
                g.write(f.read() + str(self.k))
    """
)


class Lines:
    """The watcher's output lines, each with the time it was read."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        for stream in (proc.stdout, proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.cond:
                self.items.append((time.perf_counter(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, start: int, predicate: object, timeout: float = 20) -> tuple[int, float]:
        """The index and time of the first line from ``start`` on that satisfies ``predicate``."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.items)):
                    if predicate(self.items[i][1]):  # type: ignore[operator]
                        return i, self.items[i][0]
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise SystemExit(
                        "timed out; output so far:\n" + "\n".join(text for _, text in self.items)
                    )
                self.cond.wait(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--polling", action="store_true", help="measure FLOW_WATCH_POLLING=1")
    args = parser.parse_args()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    if args.polling:
        env["FLOW_WATCH_POLLING"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "Flowfile.py"), "w") as f:
            f.write(FLOWFILE)
        with open(os.path.join(tmp, "in.txt"), "w") as f:
            f.write("0")
        proc = subprocess.Popen(
            [sys.executable, "-m", "flow", "-w", "Step", "k=3"],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            lines = Lines(proc)
            pos, _ = lines.wait(0, lambda s: s.startswith("flow: watching"))
            latencies = []
            for n in range(1, args.edits + 1):
                time.sleep(0.3)  # a pause between saves, as a person makes
                start = time.perf_counter()
                with open(os.path.join(tmp, "in.txt"), "w") as f:
                    f.write(str(n))
                pos, seen = lines.wait(pos + 1, lambda s: s.endswith(" changed"))
                latencies.append(seen - start)
                pos, _ = lines.wait(pos + 1, lambda s: s.startswith("flow: watching"))
        finally:
            proc.kill()
            proc.wait()
    ms = sorted(x * 1000 for x in latencies)
    mode = "polling" if args.polling else "native"
    print(
        f"flow -w ({mode}): save-to-rebuild-start latency over {len(ms)} edits: "
        f"median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f})"
    )


if __name__ == "__main__":
    main()
