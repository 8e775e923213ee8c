"""The seed pipeline end to end: build, then nothing to do."""

SEED = '''
class PrintNumbers(flow.Task):
    n = flow.IntParameter(default=10)
    def output(self):
        return flow.LocalTarget(f"out/numbers_upto_{self.n}.txt")
    def run(self):
        with self.output().open("w") as f:
            for i in range(1, self.n + 1):
                f.write(f"{i}\\n")

class SquaredNumbers(flow.Task):
    n = flow.IntParameter(default=10)
    def requires(self):
        return [PrintNumbers(n=self.n)]
    def output(self):
        return flow.LocalTarget("out/squares.txt")
    def run(self):
        with self.input()[0].open() as fin, self.output().open("w") as fout:
            for line in fin:
                k = int(line)
                fout.write(f"{k}: {k * k}\\n")
'''


def test_seed_pipeline_builds_then_has_nothing_to_do(project):
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "n=3") == ["PrintNumbers(n=3)", "SquaredNumbers(n=3)"]
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    second = project.run("SquaredNumbers", "n=3")
    assert second.returncode == 0
    assert "up to date" in second.stdout
    assert project.ran("SquaredNumbers", "n=3") == []
