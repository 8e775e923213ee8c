"""Configuration files: Luigi's luigi.cfg / luigi.toml and flow's [tool.flow] set defaults under
the command line, count for identity and staleness, and say where each setting came from."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SEED
from test_completion import complete
from test_parallel import MEETING, _stamps

# The seed pipeline as a Luigi user ports it: only the import changes.
PORTED = "import flow as luigi\n" + SEED.replace("flow.", "luigi.")

TYPED = """
import enum

class Color(enum.Enum):
    red = 1
    blue = 2

class Typed(flow.Task):
    task_namespace = "examples"
    n = flow.IntParameter(default=1)
    ratio = flow.FloatParameter(default=0.5)
    fast = flow.BoolParameter()
    day = flow.DateParameter(default="2026-01-01")
    items = flow.ListParameter(default=[])
    color = flow.EnumParameter(enum=Color, default=Color.red)
    def output(self):
        return flow.LocalTarget("out/typed.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(repr((self.n, self.ratio, self.fast, str(self.day), self.items, self.color.name)))
"""


def _ported(project, cfg: str, name: str = "luigi.cfg") -> None:
    project.write("Flowfile.py", PORTED)
    project.write(name, cfg)


def test_a_ported_pipeline_takes_its_defaults_from_luigi_cfg(project):
    """luigi.cfg's [SquaredNumbers] n = 4 is SquaredNumbers' default, as under Luigi."""
    _ported(project, "[core]\nlocal_scheduler = true\n\n[SquaredNumbers]\nn = 4\n")
    assert project.ran("SquaredNumbers") == ["PrintNumbers(n=4)", "SquaredNumbers(n=4)"]
    assert project.read("out/squares.txt").splitlines()[-1] == "4: 16"


def test_luigi_toml_sets_typed_values_and_namespaced_sections(project):
    """luigi.toml: a [examples.Typed] table (nested or quoted) with TOML's own types."""
    project.flowfile(TYPED)
    project.write(
        "luigi.toml",
        """
        [examples.Typed]
        n = 7
        ratio = 2
        fast = true
        day = 2026-11-25
        items = ["a", "b"]
        color = "blue"
        """,
    )
    assert project.ran("Typed") == [
        'examples.Typed(n=7, ratio=2.0, fast=true, day=2026-11-25, items=["a","b"], color=blue)'
    ]
    assert project.read("out/typed.txt") == "(7, 2.0, True, '2026-11-25', ('a', 'b'), 'blue')"
    project.write("luigi.toml", '["examples.Typed"]\nn = 8\n')
    assert project.plan("Typed")[
        "examples.Typed(n=8, ratio=0.5, fast=false, day=2026-01-01, items=[], color=red)"
    ]


def test_the_command_line_beats_the_configuration(project):
    """A task's own parameter and Task.param=value both override luigi.cfg; --Task-param too."""
    _ported(project, "[SquaredNumbers]\nn = 4\n[PrintNumbers]\nn = 5\n")
    plan = project.plan("SquaredNumbers", "n=3")
    assert list(plan) == ["PrintNumbers(n=3)", "SquaredNumbers(n=3)"]
    assert list(project.plan("PrintNumbers")) == ["PrintNumbers(n=5)"]
    assert list(project.plan("PrintNumbers", "PrintNumbers.n=6")) == ["PrintNumbers(n=6)"]
    assert list(project.plan("--PrintNumbers-n", "2", "PrintNumbers")) == ["PrintNumbers(n=2)"]


def test_editing_a_configured_default_is_params_changed(project):
    """The configured value is part of the task's identity: changing it reruns the task."""
    _ported(project, "[SquaredNumbers]\nn = 4\n")
    assert project.ran("SquaredNumbers") == ["PrintNumbers(n=4)", "SquaredNumbers(n=4)"]
    assert project.ran("SquaredNumbers") == []
    project.write("luigi.cfg", "[SquaredNumbers]\nn = 5\n")
    entry = project.plan("SquaredNumbers")["SquaredNumbers(n=5)"]
    assert entry["would_run"]
    assert entry["reasons"][0]["kind"] == "params-changed"
    assert "4" in entry["reasons"][0]["detail"] and "5" in entry["reasons"][0]["detail"]


def test_dashes_or_underscores_and_any_case_name_a_parameter(project):
    """Keys are matched as Luigi matches them: dashes for underscores, case ignored (INI)."""
    project.flowfile(
        """
        class Span(flow.Task):
            max_days = flow.IntParameter(default=1)
            def run(self):
                print("max_days", self.max_days)
        """
    )
    project.write("luigi.cfg", "[Span]\nMax-Days = 9\n")
    assert list(project.plan("Span")) == ["Span(max_days=9)"]


def test_luigi_config_path_names_a_file_that_beats_the_project_files(project):
    """LUIGI_CONFIG_PATH (INI or TOML by its suffix) wins over luigi.cfg and [tool.flow.tasks]."""
    _ported(project, "[SquaredNumbers]\nn = 4\n")
    project.write("pyproject.toml", "[tool.flow.tasks.SquaredNumbers]\nn = 5\n")
    project.write("conf/prod.toml", "[SquaredNumbers]\nn = 6\n")
    code, doc = project.run_json("-n", "SquaredNumbers")
    assert "SquaredNumbers(n=5)" in [p["task"] for p in doc["plan"]]
    proc = project.run(
        "-n", "SquaredNumbers", env={"LUIGI_CONFIG_PATH": str(project.root / "conf/prod.toml")}
    )
    assert "SquaredNumbers(n=6)" in proc.stdout, proc.stderr
    proc = project.run("-n", "SquaredNumbers", env={"LUIGI_CONFIG_PATH": "missing.cfg"})
    assert proc.returncode == 0
    assert "LUIGI_CONFIG_PATH" in proc.stderr and "missing.cfg" in proc.stderr


def test_tool_flow_tasks_sets_parameter_defaults_in_pyproject_or_flow_toml(project):
    """[tool.flow.tasks.NAME] in pyproject.toml, or [tasks.NAME] in flow.toml (which wins)."""
    project.flowfile(SEED)
    project.write(
        "pyproject.toml", '[project]\nname = "x"\n\n[tool.flow.tasks.SquaredNumbers]\nn = 3\n'
    )
    assert list(project.plan("SquaredNumbers")) == ["PrintNumbers(n=3)", "SquaredNumbers(n=3)"]
    project.write("flow.toml", "[tasks.SquaredNumbers]\nn = 2\n")
    assert list(project.plan("SquaredNumbers")) == ["PrintNumbers(n=2)", "SquaredNumbers(n=2)"]


def test_tool_flow_jobs_runs_two_tasks_at_once(project):
    """[tool.flow] jobs = 2: two tasks that wait for each other's start both finish, in two
    processes, with overlapping intervals (run one at a time, the first would wait in vain)."""
    project.flowfile(MEETING)
    project.write("pyproject.toml", "[tool.flow]\njobs = 2\n")
    proc = project.run("Meeting", timeout=120)
    assert proc.returncode == 0, proc.stderr
    a, b = _stamps(project, 2, "meet")
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), (a, b)
    assert a["pid"] != b["pid"]


def test_workers_see_configured_defaults_of_upstream_tasks(project):
    """Under -j 2, a worker building requires() uses the configured default as flow does."""
    project.flowfile(SEED)
    project.write("luigi.cfg", "[PrintNumbers]\nn = 3\n")
    assert project.run("-j", "2", "PrintNumbers").returncode == 0
    assert project.ran("-j", "2", "SquaredNumbers", "n=3") == ["SquaredNumbers(n=3)"]


def test_the_command_line_beats_tool_flow_options(project):
    """-j 1 on the command line wins over [tool.flow] jobs; --show-config says so."""
    project.flowfile(SEED)
    project.write("pyproject.toml", "[tool.flow]\njobs = 3\nkeep-going = true\n")
    code, doc = project.run_json("--show-config", "-j", "1")
    assert code == 0
    assert doc["options"]["jobs"] == {"value": 1, "from": "command line", "line": None}
    assert doc["options"]["keep-going"]["value"] is True
    assert doc["options"]["keep-going"]["line"] == 3


def test_tool_flow_flowfile_names_the_flowfile(project):
    """[tool.flow] flowfile, relative to the configuration file, replaces Flowfile.py."""
    project.write("pipelines/build.py", "import flow\n" + SEED)
    project.write("pyproject.toml", '[tool.flow]\nflowfile = "pipelines/build.py"\n')
    assert project.ran("PrintNumbers", "n=2") == ["PrintNumbers(n=2)"]
    assert (project.root / "pipelines/out/numbers_upto_2.txt").exists()


def test_show_config_prints_each_setting_with_its_file_and_line(project):
    """Text and JSON: files read in precedence order, options, and task defaults with origins."""
    _ported(project, "[core]\nworkers = 2\n\n[SquaredNumbers]\nn = 4\n")
    project.write("pyproject.toml", '[tool.flow]\njobs = 2\ncache = "/tmp/c"\n')
    proc = project.run("--show-config")
    assert proc.returncode == 0, proc.stderr
    assert "SquaredNumbers.n=4" in proc.stdout and "luigi.cfg:5" in proc.stdout
    assert "jobs = 2" in proc.stdout and "pyproject.toml:2" in proc.stdout
    assert 'cache = "/tmp/c"' in proc.stdout and "not used yet" not in proc.stdout
    code, doc = project.run_json("--show-config")
    assert code == 0
    assert [p.rsplit("/", 1)[-1] for p in doc["files"]] == ["luigi.cfg", "pyproject.toml"]
    assert doc["tasks"] == {
        "SquaredNumbers": {"n": {"value": "4", "from": str(project.root / "luigi.cfg"), "line": 5}}
    }
    assert doc["options"]["jobs"]["from"] == str(project.root / "pyproject.toml")
    assert doc["options"]["cache"]["value"] == "/tmp/c" and "used" not in doc["options"]["cache"]


def test_a_private_value_is_not_shown(project):
    """--show-config masks a private parameter's configured value."""
    project.flowfile(
        """
        from flow.parameter import ParameterVisibility
        class Upload(flow.Task):
            token = flow.Parameter(visibility=ParameterVisibility.PRIVATE)
            def run(self):
                pass
        """
    )
    project.write("luigi.cfg", "[Upload]\ntoken = hunter2\n")
    proc = project.run("--show-config")
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "Upload.token=***" in proc.stdout


# -- bad configuration ----------------------------------------------------------------------------
def test_a_misspelt_task_section_is_a_warning_with_a_suggestion(project):
    """[SquaredNumber] warns (did you mean...); Luigi's own and unrelated sections are silent."""
    _ported(
        project,
        "[core]\nno_configure_logging = true\n[worker]\nkeep_alive = true\n"
        "[resources]\ngpu = 1\n[my_service]\nurl = x\n[SquaredNumber]\nn = 4\n",
    )
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 0
    warnings = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1, proc.stderr
    assert "luigi.cfg:9" in warnings[0] and "did you mean [SquaredNumbers]" in warnings[0]


def test_an_unknown_parameter_is_a_warning_with_a_suggestion(project):
    """n_max in [SquaredNumbers] is ignored with a warning naming the line and the real name."""
    project.flowfile(
        """
        class Span(flow.Task):
            max_days = flow.IntParameter(default=1)
            def run(self):
                pass
        """
    )
    project.write("luigi.cfg", "[Span]\nmax_day = 4\n")
    proc = project.run("-n", "Span")
    assert proc.returncode == 0
    assert "luigi.cfg:2" in proc.stderr and "did you mean max_days" in proc.stderr
    assert "Span(max_days=1)" in proc.stdout


def test_an_unknown_tool_flow_section_or_option_is_a_warning(project):
    """In flow's own file every task section is checked, and so is every option name."""
    project.flowfile(SEED)
    project.write("pyproject.toml", "[tool.flow]\njob = 2\n\n[tool.flow.tasks.Squares]\nn = 1\n")
    proc = project.run("-n", "PrintNumbers")
    assert proc.returncode == 0
    assert "pyproject.toml:2" in proc.stderr and "did you mean jobs" in proc.stderr
    assert "pyproject.toml:4" in proc.stderr and "[Squares]" in proc.stderr


def test_a_bad_value_is_an_error_naming_the_file_and_line(project):
    """A value the parameter cannot parse: the command line's message, with file:line; exit 2."""
    _ported(project, "[core]\nx = 1\n\n[SquaredNumbers]\nn = many\n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2
    assert "luigi.cfg:5" in proc.stderr
    assert "bad value 'many' for parameter 'n' of SquaredNumbers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_toml_type_is_an_error_naming_the_file_and_line(project):
    """n = 1.5 for an integer, in pyproject.toml: exit 2 naming pyproject.toml:3."""
    project.flowfile(SEED)
    project.write("pyproject.toml", "[tool.flow.tasks.SquaredNumbers]\n\nn = 1.5\n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2
    assert "pyproject.toml:3" in proc.stderr and "'1.5'" in proc.stderr


def test_a_bad_option_value_is_an_error(project):
    """[tool.flow] jobs = "many": exit 2 naming the line and the form expected."""
    project.flowfile(SEED)
    project.write("flow.toml", 'jobs = "many"\n')
    proc = project.run("-n", "PrintNumbers")
    assert proc.returncode == 2
    assert "flow.toml:1" in proc.stderr and "jobs" in proc.stderr and "whole number" in proc.stderr


def test_unreadable_ini_is_an_error_naming_the_file_and_line(project):
    """A line configparser cannot read, or a setting before any section: exit 2 with file:line."""
    _ported(project, "[SquaredNumbers]\nn = 4\nthis is not ini\n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2
    assert "luigi.cfg:3" in proc.stderr and "Traceback" not in proc.stderr
    project.write("luigi.cfg", "n = 4\n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2 and "luigi.cfg:1" in proc.stderr


def test_unreadable_toml_is_an_error_naming_the_file_and_line(project):
    """Broken TOML in luigi.toml or pyproject.toml: exit 2 naming the file and line."""
    project.flowfile(SEED)
    project.write("luigi.toml", "[SquaredNumbers]\nn = \n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2
    assert "luigi.toml:2" in proc.stderr and "Traceback" not in proc.stderr
    (project.root / "luigi.toml").unlink()
    project.write("pyproject.toml", "[tool.flow\njobs = 2\n")
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2 and "pyproject.toml:1" in proc.stderr


def test_a_missing_environment_variable_in_luigi_cfg_is_an_error(project):
    """Luigi's ${VAR} interpolation: an unset variable is an error naming the line."""
    _ported(project, "[SquaredNumbers]\nn = ${FLOW_TEST_N}\n")
    proc = project.run("-n", "SquaredNumbers", env={"FLOW_TEST_N": "6"})
    assert "SquaredNumbers(n=6)" in proc.stdout, proc.stderr
    proc = project.run("-n", "SquaredNumbers")
    assert proc.returncode == 2 and "luigi.cfg:2" in proc.stderr and "FLOW_TEST_N" in proc.stderr


# -- completion and listings ----------------------------------------------------------------------
def test_completion_offers_the_configured_value_and_follows_an_edit(project):
    """The index key covers the configuration files: an edit to luigi.cfg refreshes it."""
    project.flowfile(SEED)
    assert complete(project, "flow SquaredNumbers n") == ["n=10"]
    project.write("luigi.cfg", "[SquaredNumbers]\nn = 20\n")
    assert complete(project, "flow SquaredNumbers n") == ["n=20"]
    project.write("luigi.cfg", "[SquaredNumbers]\nn = 30\n")
    assert complete(project, "flow SquaredNumbers n") == ["n=30"]


def test_list_shows_configured_defaults(project):
    """flow --list --json gives the configured value as the parameter's default."""
    project.flowfile(SEED)
    project.write("luigi.cfg", "[SquaredNumbers]\nn = 20\n")
    code, doc = project.run_json("--list")
    params = {t["name"]: t["params"][0]["default"] for t in doc["tasks"]}
    assert params == {"PrintNumbers": "10", "SquaredNumbers": "20"}


def test_luigi_config_path_parameter_option_reads_another_section(project):
    """Luigi's Parameter(config_path=dict(section=..., name=...)) is honoured."""
    project.flowfile(
        """
        class Fetch(flow.Task):
            host = flow.Parameter(default="localhost", config_path=dict(section="db", name="host"))
            def run(self):
                pass
        """
    )
    project.write("luigi.cfg", "[db]\nhost = db.example\n")
    assert list(project.plan("Fetch")) == ["Fetch(host=db.example)"]
    project.write("luigi.cfg", "[db]\nhost = db.example\n[Fetch]\nhost = other\n")
    assert list(project.plan("Fetch")) == ["Fetch(host=other)"]


def test_flow_json_output_stays_a_single_document_with_a_config(project):
    """Warnings go to stderr: --json stdout remains parseable."""
    _ported(project, "[SquaredNumber]\nn = 4\n")
    code, doc = project.run_json("-n", "SquaredNumbers")
    assert code == 0 and json.dumps(doc)


def test_watch_mode_rereads_an_edited_configuration_file(project):
    """flow -w: saving luigi.cfg with a new default re-plans with it (params-changed)."""
    from test_watch import Watcher, _save

    _ported(project, "[SquaredNumbers]\nn = 2\n")
    w = Watcher(project, "SquaredNumbers")
    project.started.append(w)
    w.wait_for(lambda: w.count("flow: watching") >= 1, "the first build")
    assert project.read("out/squares.txt").splitlines()[-1] == "2: 4"
    _save(project.root / "luigi.cfg", "[SquaredNumbers]\nn = 3\n")
    w.wait_for(lambda: w.count("flow: watching") >= 2, "the rebuild after the edit")
    assert project.read("out/squares.txt").splitlines()[-1] == "3: 9"
    assert w.count("luigi.cfg changed") == 1


def test_precedence_machine_then_flowfile_dir_then_cwd_then_flow_file_then_env(
    tmp_path, monkeypatch
):
    """Each file beats the ones before it: /etc/luigi < beside the Flowfile < the current
    directory < [tool.flow.tasks] < LUIGI_CONFIG_PATH."""
    from flow import config

    etc, proj = tmp_path / "etc", tmp_path / "proj"
    sub = proj / "sub"
    files = {
        etc / "luigi.cfg": "[T]\na = etc\nb = etc\nc = etc\nd = etc\ne = etc\n",
        proj / "luigi.cfg": "[T]\nb = proj\nc = proj\nd = proj\ne = proj\n",
        sub / "luigi.toml": '[T]\nc = "cwd"\nd = "cwd"\ne = "cwd"\n',
        proj / "pyproject.toml": '[tool.flow.tasks.T]\nd = "flow"\ne = "flow"\n',
        tmp_path / "env.cfg": "[T]\ne = env\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setattr(config, "SYSTEM_DIR", str(etc))
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(tmp_path / "env.cfg"))
    found = config.add_parameter_files(config.load_options(str(sub)), str(proj), str(sub))
    values = {k: found.lookup("T", k).value for k in "abcde"}  # type: ignore[union-attr]
    assert values == {"a": "etc", "b": "proj", "c": "cwd", "d": "flow", "e": "env"}
    assert [p.relative_to(tmp_path).as_posix() for p in map(Path, found.files)] == [
        "etc/luigi.cfg",
        "proj/luigi.cfg",
        "proj/sub/luigi.toml",
        "proj/pyproject.toml",
        "env.cfg",
    ]


def test_a_relative_luigi_config_path_and_luigi_cfg_are_found_from_where_flow_starts(project):
    """From a subdirectory: its luigi.cfg beats the Flowfile's, and a relative
    LUIGI_CONFIG_PATH is taken from there, though flow changes into the Flowfile's directory."""
    _ported(project, "[SquaredNumbers]\nn = 4\n")
    project.write("sub/luigi.cfg", "[SquaredNumbers]\nn = 5\n")
    project.write("sub/prod.cfg", "[SquaredNumbers]\nn = 6\n")
    proc = project.run("-n", "SquaredNumbers", cwd=project.root / "sub")
    assert "SquaredNumbers(n=5)" in proc.stdout, proc.stderr
    proc = project.run(
        "-n", "SquaredNumbers", cwd=project.root / "sub", env={"LUIGI_CONFIG_PATH": "prod.cfg"}
    )
    assert "SquaredNumbers(n=6)" in proc.stdout, proc.stderr


def test_a_script_calling_flow_run_reads_the_luigi_cfg_beside_it(project):
    """python pipeline.py (flow.run() in the script) takes luigi.cfg from the script's directory."""
    import subprocess
    import sys

    project.write("pipeline.py", PORTED + "\nif __name__ == '__main__':\n    luigi.run()\n")
    project.write("luigi.cfg", "[SquaredNumbers]\nn = 3\n")
    proc = subprocess.run(
        [sys.executable, "pipeline.py", "SquaredNumbers"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/squares.txt").splitlines()[-1] == "3: 9"


def test_without_configuration_files_no_parser_is_imported(project):
    """A run in a project without configuration files pays a few stat calls: neither tomllib,
    configparser nor the file reader is imported (start-up stays light)."""
    import subprocess
    import sys

    project.flowfile(SEED)
    assert project.run("PrintNumbers").returncode == 0
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['-q', 'PrintNumbers'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True
    )
    status, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == 0
    assert not {"tomllib", "configparser", "flow.configfile", "flow.settings"} & set(loaded)


def test_a_tool_flow_table_in_flow_toml_is_a_warning_that_says_where_keys_go(project):
    """flow.toml holds [tool.flow]'s keys at its top level; a copied [tool.flow] is named."""
    project.flowfile(SEED)
    project.write("flow.toml", "[tool.flow]\njobs = 2\n")
    proc = project.run("-n", "PrintNumbers")
    assert proc.returncode == 0
    assert "flow.toml:1" in proc.stderr and "top level" in proc.stderr


def test_no_keep_going_overrides_keep_going_from_the_config(project):
    """[tool.flow] keep-going = true, then --no-keep-going: the command line wins, as for every
    option (a flag that could only be switched on could not undo the configured value)."""
    project.write("pyproject.toml", "[tool.flow]\nkeep-going = true\n")
    project.flowfile(
        """
        class Fails(flow.Task):
            def output(self):
                return flow.LocalTarget("fails.txt")
            def run(self):
                raise RuntimeError("no")
        class Fine(flow.Task):
            def output(self):
                return flow.LocalTarget("fine.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("ok")
        class Both(flow.WrapperTask):
            def requires(self):
                return [Fails(), Fine()]
        """
    )
    shown = project.run("--show-config", "--no-keep-going").stdout
    assert any("keep-going = false" in ln and "command line" in ln for ln in shown.splitlines())
    assert project.run("Both").returncode == 1
    assert (project.root / "fine.txt").exists()  # keep-going from the config ran it
    (project.root / "fine.txt").unlink()
    assert project.run("--no-keep-going", "Both").returncode == 1
    assert not (project.root / "fine.txt").exists()
