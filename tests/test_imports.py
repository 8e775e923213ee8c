"""The CLI's import path stays light: completion and every no-op re-run the program."""

import json
import os
import subprocess
import sys

HEAVY = [
    "fsspec",
    "s3fs",
    "botocore",
    "paramiko",
    "ftplib",
    "watchdog",
    "dask",
    "distributed",
    "concurrent.futures",
    "multiprocessing",
    "asyncio",
]


def test_importing_the_cli_pulls_in_no_heavy_module():
    """Importing flow.cli (what the console script does) must not import optional backends."""
    code = "import json, sys, flow.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not [m for m in HEAVY if m in loaded]


def test_a_local_no_op_build_imports_no_heavy_module(project):
    """A no-op of a local graph neither needs nor imports the process pool or remote backends."""
    project.flowfile(
        """
        class Hello(flow.Task):
            def output(self):
                return flow.LocalTarget("hello.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("hi")
        """
    )
    assert project.run("Hello").returncode == 0
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['-q', 'Hello'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True
    )
    status, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == 0
    assert not [m for m in HEAVY if m in set(loaded)]
    # Needed only after a failure, an interruption or a hand edit: never on a clean no-op.
    assert not [m for m in ("pathlib", "shutil", "traceback", "glob", "subprocess") if m in loaded]


def test_version_imports_click_and_the_cli_but_not_the_engine():
    """`flow --version` (and every completion Tab) must not load the build engine."""
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    engine = [
        "flow.spine",
        "flow.decide",
        "flow.executor",
        "flow.store.records",
        "flow.task",
        "sqlite3",
    ]
    assert [m for m in engine if m in loaded] == []


# A warm Tab and a warm --list go through the console script's module (flow.entry) and answer
# from the index: no click, no Flowfile, no project module, no engine. The probe writes the
# imported module names to a file, whatever path the command took.
PROBE = """
import json, sys
where = sys.argv[1]
sys.argv = ["flow", *sys.argv[2:]]
try:
    from flow.entry import main
    main()
except SystemExit:
    pass
finally:
    with open(where, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def _entry_modules(project, tmp_path, args, env):
    where = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(where), *args],
        cwd=project.root,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
        check=True,
    )
    return set(json.loads(where.read_text()))


def test_a_warm_tab_and_a_warm_list_import_neither_click_nor_the_flowfile(project, tmp_path):
    project.write("helper.py", "import flow\nclass Base(flow.Task):\n    pass\n")
    project.flowfile("from helper import Base\nclass Slow(Base):\n    pass\n")
    tab = {"_FLOW_COMPLETE": "bash_complete", "COMP_WORDS": "flow Sl", "COMP_CWORD": "1"}
    light = ["click", "Flowfile", "__flowfile__", "helper", "flow.cli", "flow.task", "typing"]
    # Cold: click's path builds the index (a Tab's is not good for --list, which sees the import).
    assert "click" in _entry_modules(project, tmp_path, [], tab)
    assert "click" in _entry_modules(project, tmp_path, ["--list"], {})
    for args, env in (([], tab), (["--list"], {}), (["--list", "--json"], {}), (["--version"], {})):
        warm = _entry_modules(project, tmp_path, args, env)
        assert [m for m in light if m in warm] == [], args
        assert not [m for m in HEAVY if m in warm]
