"""The seed pipeline end to end: build, then nothing to do."""

from conftest import SEED


def test_seed_pipeline_builds_then_has_nothing_to_do(project):
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "n=3") == ["PrintNumbers(n=3)", "SquaredNumbers(n=3)"]
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    second = project.run("SquaredNumbers", "n=3")
    assert second.returncode == 0
    assert "up to date" in second.stdout
    assert project.ran("SquaredNumbers", "n=3") == []
