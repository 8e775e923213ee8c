"""What the artifact cache costs and saves: a cold build, a warm-cache build in a fresh clone,
and the lookup and store overhead per task, at several N, with a local directory (and S3 on
moto's server with ``--s3``).

    python benchmarks/cache.py                       # N = 1,000 and 10,000, local directory
    python benchmarks/cache.py --n 1000 --s3 --runs 1

Each clone is a fresh directory with the same Flowfile and inputs. The workload: N ``Leaf(i)``
tasks, each reading one input file and writing a small output, and one ``Sum`` over them all.
Needs only the standard library (and s3fs, moto, boto3 for ``--s3``); run it with the Python
of the environment flow is installed in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FLOWFILE = """
import flow

N = {n}


class Leaf(flow.Task):
    i = flow.IntParameter()

    def requires(self):
        return flow.Files(f"data/in{{self.i}}.txt")

    def output(self):
        return flow.LocalTarget(f"out/leaf{{self.i}}.txt")

    def run(self):
        with open(f"data/in{{self.i}}.txt") as fin, self.output().open("w") as fout:
            fout.write(fin.read().upper() * 4)


class Sum(flow.Task):
    def requires(self):
        return [Leaf(i=i) for i in range(N)]

    def output(self):
        return flow.LocalTarget("out/sum.txt")

    def run(self):
        total = sum(len(t.open().read()) for t in self.input())
        with self.output().open("w") as f:
            f.write(str(total))
"""

FLOW = [os.path.join(os.path.dirname(sys.executable), "flow")]


def clone(root: str, n: int) -> str:
    """A fresh checkout: the Flowfile and N input files."""
    os.makedirs(os.path.join(root, "data"))
    with open(os.path.join(root, "Flowfile.py"), "w") as f:
        f.write(FLOWFILE.format(n=n))
    for i in range(n):
        with open(os.path.join(root, "data", f"in{i}.txt"), "w") as f:
            f.write(f"input number {i}\n" * 3)
    return root


def timed(args: list[str], cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*FLOW, "-q", *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"flow {' '.join(args)} failed in {cwd}:\n{proc.stderr}")
    return elapsed


def copy_time(src: str, dst: str) -> float:
    start = time.perf_counter()
    shutil.copytree(src, dst)
    return time.perf_counter() - start


def measure(n: int, runs: int, cache_for: object, scratch: str, env: dict[str, str]) -> dict:
    """Median seconds of each step over ``runs`` rounds, each in new clones and a new cache."""
    rows: dict[str, list[float]] = {}
    for r in range(runs):
        base = os.path.join(scratch, f"n{n}-r{r}")
        cache = cache_for(base)  # type: ignore[operator]
        steps = {}
        plain = clone(os.path.join(base, "plain"), n)
        steps["cold build, no cache"] = timed(["Sum"], plain, env)
        steps["no-op, no cache"] = timed(["Sum"], plain, env)
        a = clone(os.path.join(base, "a"), n)
        steps["dry run, empty cache (N misses)"] = timed(["-n", "--cache", cache, "Sum"], a, env)
        steps["cold build, storing in the cache"] = timed(["--cache", cache, "Sum"], a, env)
        b = clone(os.path.join(base, "b"), n)
        steps["dry run, full cache (N hits)"] = timed(["-n", "--cache", cache, "Sum"], b, env)
        steps["dry run, no cache"] = timed(["-n", "Sum"], b, env)
        steps["warm-cache build, fresh clone"] = timed(["--cache", cache, "Sum"], b, env)
        steps["no-op after the restore"] = timed(["--cache", cache, "Sum"], b, env)
        steps["copying out/ (cp -r)"] = copy_time(
            os.path.join(a, "out"), os.path.join(base, "copy")
        )
        for name, seconds in steps.items():
            rows.setdefault(name, []).append(seconds)
        shutil.rmtree(base, ignore_errors=True)
    return {name: statistics.median(v) for name, v in rows.items()}


def per_task(m: dict, n: int) -> list[str]:
    tasks = n + 1
    lookup = (m["dry run, empty cache (N misses)"] - m["dry run, no cache"]) / tasks
    hit = (m["dry run, full cache (N hits)"] - m["dry run, no cache"]) / tasks
    store = (m["cold build, storing in the cache"] - m["cold build, no cache"]) / tasks
    restore = (m["warm-cache build, fresh clone"] - m["no-op after the restore"]) / tasks
    return [
        f"| lookup per task, a miss (key + absent entry) | {lookup * 1e3:.3f} ms |",
        f"| lookup per task, a hit (key + entry read and checked) | {hit * 1e3:.3f} ms |",
        f"| store per task (objects + entry, beside running it) | {store * 1e3:.3f} ms |",
        f"| restore per task (warm build minus no-op) | {restore * 1e3:.3f} ms |",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], dict[str, str], object]:
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            break
        except Exception:  # noqa: BLE001 - still starting
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("moto's server did not start") from None
            time.sleep(0.2)
    env = {
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return server, env, client


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1000,10000", help="task counts, comma-separated")
    ap.add_argument("--runs", type=int, default=3, help="rounds per N (medians are shown)")
    ap.add_argument("--s3", action="store_true", help="use an S3 cache on moto's server instead")
    ap.add_argument("--scratch", default=None, help="where clones go (default: a temporary dir)")
    args = ap.parse_args()
    env = {**os.environ, "NO_COLOR": "1"}
    scratch = args.scratch or tempfile.mkdtemp(prefix="flow-cache-bench-")
    server = None
    if args.s3:
        server, s3env, client = start_moto()
        env.update(s3env)
        buckets = iter(range(1_000_000))

        def cache_for(base: str) -> str:
            name = f"bench-{next(buckets)}"
            client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
            return f"s3://{name}/cache"
    else:

        def cache_for(base: str) -> str:
            return os.path.join(base, "cache")

    try:
        kind = "S3 (moto server on 127.0.0.1)" if args.s3 else "a local directory"
        print(f"Cache: {kind}; {args.runs} round(s) per N, medians; {os.cpu_count()} CPUs")
        for n in (int(x) for x in args.n.split(",")):
            m = measure(n, args.runs, cache_for, scratch, env)
            print(f"\n### N = {n:,} leaf tasks + 1 sum\n\n| step | seconds |\n|---|---:|")
            for name, seconds in m.items():
                print(f"| {name} | {seconds:.3f} |")
            print("\n| per task | |\n|---|---:|")
            print("\n".join(per_task(m, n)))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
