"""A corpus of hostile input against the CLI: each case ends in one line naming the input
and the fix, exit status 2, no traceback, and nothing written (no results, no MLflow store).

Specs are a small valid Table 5 spec with one thing broken; flags and paths are broken
one at a time. The cases run in-process through ``harness.cli.main`` (what a traceback
would escape from); the few that must be seen from outside run as subprocesses.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import TABLE5, assert_clean_failure, dump_toml, harness_cli, needs_nb201

from harness.cli import main

pytestmark = needs_nb201()


@pytest.fixture
def base(mlflow_store, nb201_built) -> dict:
    raw = tomllib.loads(TABLE5.read_text())
    raw["table"] = {"path": str(nb201_built[0]), "sha256": nb201_built[1]}
    raw["runs"]["seeds"] = [0, 1]
    raw["experiment"]["results"] = "results/t5"
    return raw


def write(folder: Path, raw: dict, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(dump_toml(raw))
    return path


def fails_cleanly(capsys, folder: Path, argv: list[str], *needles: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("harness: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    assert not (folder / "results").exists()
    assert not (folder / "mlflow.db").exists()


def edit(section: str, key: str, value) -> callable:
    def apply(raw: dict) -> None:
        raw[section][key] = value

    return apply


SPEC_CASES = {
    "seconds inf": (edit("budget", "seconds", float("inf")), "[budget.seconds]"),
    "seconds nan": (edit("budget", "seconds", float("nan")), "[budget.seconds]"),
    "seconds negative": (edit("budget", "seconds", -1), "[budget.seconds]"),
    "seconds zero": (edit("budget", "seconds", 0), "[budget.seconds]"),
    "evaluations huge": (edit("budget", "evaluations", 2**62), "[budget.evaluations]"),
    "seconds beyond 64 bits": (edit("budget", "seconds", 2**70), "[budget.seconds]"),
    "no limit": (lambda r: r["budget"].pop("seconds"), "[budget] sets no limit"),
    "overrun odd": (edit("budget", "overrun", "maybe"), "[budget.overrun]"),
    "workers bool": (edit("runs", "workers", True), "[runs.workers]"),
    "workers zero": (edit("runs", "workers", 0), "[runs.workers]"),
    "workers huge": (edit("runs", "workers", 10**6), "[runs.workers]"),
    "seeds empty": (edit("runs", "seeds", []), "[runs.seeds]"),
    "seeds negative": (edit("runs", "seeds", [-1]), "[runs.seeds]"),
    "seeds count huge": (edit("runs", "seeds", {"start": 0, "count": 10**9}), "[runs.seeds"),
    "seeds float": (edit("runs", "seeds", [1.5]), "[runs.seeds]"),
    "epoch zero": (edit("search", "epoch", 0), "[search.epoch]"),
    "epoch huge": (edit("search", "epoch", 10**7), "[search.epoch]"),
    "epoch absent in table": (edit("search", "epoch", 7), "epoch 7"),
    "signal test split": (edit("search", "signal", "ori-test/accuracy"), "[search.signal]"),
    "signal malformed": (edit("search", "signal", "a/b/c/d/e"), "[search.signal]"),
    "visible test split": (
        edit("search", "visible", {"peek": "cifar10/hp200/x-test/accuracy"}),
        "[search.visible.peek]",
    ),
    "seed policy odd": (edit("search", "seed_policy", "best"), "[search.seed_policy]"),
    "fixed without seed": (edit("search", "seed_policy", "fixed"), "[search.seed]"),
    "cost odd": (edit("search", "cost", "free"), "[search.cost]"),
    "cost live on a table": (edit("search", "cost", "live"), "[search.cost]"),
    "name with slash": (edit("experiment", "name", "a/b"), "[experiment.name]"),
    "name empty": (edit("experiment", "name", ""), "[experiment.name]"),
    "name long": (edit("experiment", "name", "x" * 300), "[experiment.name]"),
    "notes not strings": (edit("experiment", "notes", [1]), "[experiment.notes]"),
    "sha256 short": (edit("table", "sha256", "abc"), "[table.sha256]"),
    "sha256 upper": (edit("table", "sha256", "A" * 64), "[table.sha256]"),
    "sha256 wrong": (edit("table", "sha256", "0" * 64), "0" * 64),
    "space disagrees": (edit("table", "space", "nbgraph"), "[table.space]"),
    "space unknown": (edit("table", "space", "nb101"), "[table.space]"),
    "table missing": (edit("table", "path", "missing.h5"), "missing.h5"),
    "table is a folder": (edit("table", "path", "/"), "/"),
    "table is proc": (edit("table", "path", "/proc/self/status"), "/status"),
    "table is dev null": (edit("table", "path", "/dev/null"), "/dev/null"),
    "importer unknown": (edit("table", "build", {"importer": "nb101"}), "[table.build.importer]"),
    "unknown section": (lambda r: r.update(extra={"a": 1}), "[extra]"),
    "unknown key": (edit("search", "sigal", "x"), "[search.sigal]"),
    "strategy kind unknown": (
        lambda r: r["strategy"][0].update(kind="bayesopt"),
        "[strategy.0.kind]",
    ),
    "strategy kind not a strategy": (
        lambda r: r["strategy"][0].update(kind="os:system"),
        "[strategy.0.kind]",
    ),
    "strategy kind unimportable": (
        lambda r: r["strategy"][0].update(kind="no_such_module_here:X"),
        "[strategy.0.kind]",
    ),
    "learning rate inf": (
        lambda r: r["strategy"][2]["params"].update(learning_rate=float("inf")),
        "[strategy.2.params.learning_rate]",
    ),
    "learning rate negative": (
        lambda r: r["strategy"][2]["params"].update(learning_rate=-1.0),
        "[strategy.2.params.learning_rate]",
    ),
    "population float": (
        lambda r: r["strategy"][0]["params"].update(population_size=10.5),
        "[strategy.0.params.population_size]",
    ),
    "strategy name twice": (lambda r: r["strategy"][1].update(name="REA"), "[strategy.1.name]"),
    "strategies empty": (lambda r: r.update(strategy=[]), "[strategy]"),
    "target label odd": (
        lambda r: r["report"]["target"][0].update(label="C10 val?"),
        "[report.target.0.label]",
    ),
    "anytime not sealed": (lambda r: r["report"].update(anytime="C10 val"), "[report.anytime]"),
    "published row odd": (
        lambda r: r["published"].update(REA={"C10 val": [1.0]}),
        "[published.REA.C10 val]",
    ),
    "published names nothing": (lambda r: r["published"].update(GA={}), "[published.GA]"),
    "results empty": (edit("experiment", "results", ""), "results"),
    "results a file": (edit("experiment", "results", "/etc/hostname"), "not a folder"),
    "results in proc": (edit("experiment", "results", "/proc/harness/out"), "/proc"),
}


@pytest.mark.parametrize("case", SPEC_CASES, ids=list(SPEC_CASES))
def test_a_hostile_spec_fails_in_one_line_and_writes_nothing(base, mlflow_store, capsys, case):
    apply, needle = SPEC_CASES[case]
    apply(base)
    fails_cleanly(capsys, mlflow_store, ["run", str(write(mlflow_store, base))], needle)


RAW_SPECS = {
    "not UTF-8": (b'[experiment]\nname = "\xff\xfe"\n', "not UTF-8"),
    "deep nesting": (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested deeper"),
    "not TOML": (b"[experiment\n", "not valid TOML"),
    "binary": (b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00", "is a binary file, not a spec"),
    "huge": (b"# " + b"x" * (5 << 20) + b"\n", "too large"),
}


@pytest.mark.parametrize("case", RAW_SPECS, ids=list(RAW_SPECS))
def test_hostile_spec_bytes_fail_in_one_line(mlflow_store, capsys, case):
    data, needle = RAW_SPECS[case]
    path = mlflow_store / "bad.toml"
    path.write_bytes(data)
    fails_cleanly(capsys, mlflow_store, ["run", str(path)], "bad.toml", needle)


def test_every_problem_of_a_spec_is_listed_at_once_with_its_file_and_field(mlflow_store, capsys):
    path = mlflow_store / "bad.toml"
    path.write_text('[experiment]\nname = "x"\nresult = "out"\n[budget]\nseconds = 0\n')
    assert main(["run", str(path)]) == 2
    first, *lines = capsys.readouterr().err.strip().splitlines()
    assert first == f"harness: error: {path}: 7 problems; fix each, then run again:"
    fields = [line.split("[")[1].split("]")[0] for line in lines]
    assert fields == [
        "table",
        "search",
        "runs",
        "strategy",
        "report",
        "experiment.result",
        "budget.seconds",
    ]
    assert all(line.startswith(f"  {path}: [") for line in lines)
    assert "did you mean 'results'?" in lines[5]
    assert not (mlflow_store / "mlflow.db").exists()


def test_report_targets_the_table_lacks_are_named_by_their_spec_fields_at_once(
    base, mlflow_store, capsys
):
    base["report"]["target"][0]["metric"] = "cifar10/hp200/ori-test/loss-ish"
    base["report"]["target"][2]["metric"] = "nowhere/hp200/x-valid/accuracy"
    assert main(["run", str(write(mlflow_store, base))]) == 2
    first, *lines = capsys.readouterr().err.strip().splitlines()
    assert first.endswith("2 problems; fix each, then run again:")
    assert "[report.target.0.metric] table " in lines[0] and "loss-ish" in lines[0]
    assert "[report.target.2.metric] table " in lines[1] and "nowhere" in lines[1]
    assert not (mlflow_store / "results").exists()


def test_a_spec_path_that_is_a_folder_or_a_symlink_loop_fails_in_one_line(mlflow_store, capsys):
    fails_cleanly(capsys, mlflow_store, ["run", str(mlflow_store)], "folder")
    loop = mlflow_store / "loop.toml"
    loop.symlink_to(loop)
    fails_cleanly(capsys, mlflow_store, ["run", str(loop)], "loop.toml")


def test_a_results_path_through_a_symlink_loop_fails_before_the_search(base, mlflow_store, capsys):
    (mlflow_store / "loop").symlink_to(mlflow_store / "loop")
    base["experiment"]["results"] = "loop/t5"
    fails_cleanly(capsys, mlflow_store, ["run", str(write(mlflow_store, base))], "loop")


FLAG_CASES = {
    "jobs zero": (["--executor", "processes", "--jobs", "0"], "jobs"),
    "seeds text": (["--seeds", "a-b"], "--seeds"),
    "seeds negative": (["--seeds", "-1"], "--seeds"),
    "budget no value": (["--budget", "seconds"], "--budget"),
    "budget not a number": (["--budget", "seconds=abc"], "--budget"),
    "budget unknown key": (["--budget", "minutes=5"], "--budget 'minutes=5'"),
    "budget nan": (["--budget", "seconds=nan"], "--budget 'seconds=nan'"),
    "budget zero": (["--budget", "seconds=0"], "--budget 'seconds=0': must be > 0"),
    "seeds empty range": (["--seeds", "10-0"], "--seeds '10-0'"),
    "strategies unknown": (["--strategies", "GA"], "[overrides.strategies]"),
    "executor unknown": (["--executor", "threads"], "--executor"),
    "results empty": (["--results", ""], "results"),
    "results a file": (["--results", "/etc/hostname"], "not a folder"),
}


@pytest.mark.parametrize("case", FLAG_CASES, ids=list(FLAG_CASES))
def test_a_hostile_run_flag_fails_in_one_line_and_writes_nothing(base, mlflow_store, capsys, case):
    flags, needle = FLAG_CASES[case]
    spec = write(mlflow_store, base)
    fails_cleanly(capsys, mlflow_store, ["run", str(spec), *flags], needle)


OTHER_COMMANDS = {
    "rerun unknown run": (["rerun", "0" * 32, "--seed", "1"], "no MLflow store"),
    "report unknown run": (["report", "0" * 32, "--out", "out/x"], "no MLflow store"),
    "ls without a store": (["ls"], "no MLflow store"),
    "info missing table": (["info", "missing.h5"], "missing.h5"),
    "info not a table": (["info", "/proc/self/status"], "/proc/self/status"),
    "info bad arch": (["info", "TABLE", "--arch", "|conv_5x5~0|"], "conv_5x5"),
    "verify sample zero": (["verify", "DIGITS", "--sample", "0"], "sample"),
    "verify sample huge": (["verify", "DIGITS", "--sample", "100000"], "sample"),
    "import out is a folder": (["import", "nb201", "--source", "SRC", "--out", "."], "folder"),
    "import source missing": (
        ["import", "nb201", "--source", "nowhere", "--out", "t.h5"],
        "nowhere",
    ),
    "import nbgraph unknown": (
        ["import", "nbgraph", "--dataset", "mnist", "--out", "t.h5"],
        "mnist",
    ),
    "import nats not an archive": (
        ["import", "nats", "--source", ".", "--out", "t.h5"],
        "NATS-Bench",
    ),
    "tabulate missing spec": (["tabulate", "missing.toml"], "missing.toml"),
    "tabulate workers zero": (["tabulate", "TABULATE", "--workers", "0"], "workers"),
    "tabulate max chunks negative": (["tabulate", "TABULATE", "--max-chunks", "-1"], "max-chunks"),
    "unknown command": (["frobnicate"], "frobnicate"),
    "int flag not an int": (["verify", "TABLE", "--sample", "many"], "--sample"),
}


@pytest.mark.parametrize("case", OTHER_COMMANDS, ids=list(OTHER_COMMANDS))
def test_other_commands_fail_in_one_line_and_write_nothing(mlflow_store, nb201_built, capsys, case):
    from conftest import NB201_SOURCE, REPO

    argv, needle = OTHER_COMMANDS[case]
    places = {
        "TABLE": str(nb201_built[0]),
        "SRC": str(NB201_SOURCE),
        "TABULATE": str(REPO / "benchmarks" / "digits" / "tabulate.toml"),
        "DIGITS": str(REPO / "tabular" / "nb201-digits.h5"),
    }
    fails_cleanly(capsys, mlflow_store, [places.get(a, a) for a in argv], needle)
    assert not list(mlflow_store.glob("t.h5*")) and not list(mlflow_store.glob(".t.h5*"))


@pytest.mark.parametrize(
    "uri, needle",
    [
        ("sqlite:////proc/no/such/store.db", "MLflow store"),
        ("notascheme://somewhere", "MLflow store"),
    ],
)
def test_a_tracking_uri_mlflow_refuses_fails_before_the_search(base, mlflow_store, uri, needle):
    done = harness_cli(
        "run", str(write(mlflow_store, base)), cwd=mlflow_store, MLFLOW_TRACKING_URI=uri
    )
    assert_clean_failure(done, needle)
    assert "runs searched" not in done.stderr and not (mlflow_store / "results").exists()
