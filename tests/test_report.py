"""harness report: tables, statistics and figures from real MLflow records of Table 5."""

from __future__ import annotations

import multiprocessing
import os
import signal
import tomllib

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TABLE5, assert_clean_failure, dump_toml, harness_cli, needs_nb201
from scipy import stats

import harness
from harness.errors import HarnessError
from harness.report import anytime, plots
from harness.report import stats as report_stats

pytestmark = needs_nb201()
SEEDS = 12


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, nb201_built):
    """One folder with a sqlite store holding Table 5 at 12 seeds twice: first with REA
    and REINFORCE only (no random search), then with REA, RS and REINFORCE (the newest)."""
    folder = tmp_path_factory.mktemp("report")
    raw = tomllib.loads(TABLE5.read_text())
    raw["runs"]["seeds"] = {"start": 0, "count": SEEDS}
    raw["table"] = {"path": str(nb201_built[0]), "sha256": nb201_built[1]}
    spec = folder / "table5.toml"
    spec.write_text(dump_toml(raw))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        subset = harness.run(
            spec, strategies=["REA", "REINFORCE"], executor="serial", results="old/sub"
        ).run_id
        three = ["REA", "RS", "REINFORCE"]  # the statistics below are checked for three methods
        full = harness.run(spec, strategies=three, executor="serial", results="old/full").run_id
        yield folder, full, subset


@pytest.fixture(scope="module")
def report(recorded):
    """The full experiment's report, by name (the newest of its two records) into the
    default folder, which names the record's overrides."""
    folder, _, _ = recorded
    files = harness.make_report(["nb201-table5"], newest=True)
    return folder / "results" / "nb201-table5+strategies-REA-RS-REINFORCE", files


def test_report_writes_every_table_and_figure(report):
    out, files = report
    assert files[0].resolve() == out / "report.md"
    names = {f.name for f in files}
    for stem in ("anytime-nb201-table5", "cd-diagram", "performance-profile"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert (out / "anytime-nb201-table5.png").read_bytes()[:4] == b"\x89PNG"
    per_seed = pd.read_csv(out / "per-seed.csv")
    assert len(per_seed) == 3 * SEEDS * 6
    assert list(per_seed.columns) == ["benchmark", "method", "seed", "target", "value", "regret"]
    tex = (out / "table.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "REA (published)" in tex
    md = (out / "report.md").read_text()
    for section in ("## Statistical tests", "paired by seed", "| nb201-table5 | 12 seeds | 3 |"):
        assert section in md
    assert "| REA (published) | 91.19 ± 0.31" in (out / "table.md").read_text()
    # what was run: each method's hyperparameters and plugin origin, the evaluator, seed
    # policy and cost mode, all from the records
    assert (
        "| REA | nb201-table5 | regularized_evolution | population_size = 10, sample_size = 3 "
        "| `harness.strategies.evolution:RegularizedEvolution` | harness " in md
    )
    assert "| RS | nb201-table5 | random_search | none (the class's defaults) |" in md
    assert (
        "| nb201-table5 | tabular | `harness.evaluators.tabular:TabularEvaluator` | harness " in md
    )
    assert "| mean | table | C10 val (validation) |" in md
    # the spec gives the published n = 500: every row is tested against it
    reproduction = pd.read_csv(out / "reproduction.csv")
    assert (reproduction.published_n == 500).all()
    assert set(reproduction.verdict) <= {"reproduced", "different", "inconclusive"}
    assert len(reproduction) == 3 * 6  # REA, RS, REINFORCE: six targets each
    assert "/tmp" not in md and str(out) not in md  # no absolute paths


def test_a_report_is_byte_identical_when_made_again_in_another_process(report, recorded):
    out, files = report
    folder = recorded[0]
    done = harness_cli("report", "nb201-table5", "--newest", "--out", "again", cwd=folder)
    assert done.returncode == 0, done.stderr
    for path in files:
        assert (folder / "again" / path.name).read_bytes() == path.read_bytes(), path.name


def test_regret_and_intervals_do_not_depend_on_which_other_methods_ran(report, recorded):
    out, _ = report
    folder, _, subset = recorded
    harness.make_report([subset], out=folder / "subset")
    full = pd.read_csv(out / "table.csv").set_index(["target", "method"])
    part = pd.read_csv(folder / "subset" / "table.csv").set_index(["target", "method"])
    columns = ["mean", "ci_low", "ci_high", "regret_mean", "optimum"]
    pd.testing.assert_frame_equal(part[columns], full.loc[part.index, columns])
    optimum = full.xs("REA", level="method")["optimum"]
    assert optimum.to_dict() == pytest.approx(
        {"C10 val": 91.61, "C10 test": 94.37, "C100 val": 73.49, "C100 test": 73.51,
         "IN16 val": 46.73, "IN16 test": 47.31},
        abs=0.005,
    )  # fmt: skip


def test_statistics_agree_with_scipy_on_the_recorded_values(report):
    out, _ = report
    per_seed = pd.read_csv(out / "per-seed.csv")
    c10 = per_seed[per_seed.target == "C10 val"].pivot(
        index="seed", columns="method", values="value"
    )
    methods = ["REA", "RS", "REINFORCE"]
    md = (out / "report.md").read_text()
    statistic, p_value = stats.friedmanchisquare(*(c10[m] for m in methods))
    assert f"| nb201-table5 | {len(c10)} seeds | 3 | {statistic:.2f} |" in md
    pairs = pd.read_csv(out / "pairwise.csv")
    raw = []
    for a, b in zip(pairs.a, pairs.b, strict=True):
        nonzero = (c10[a] - c10[b])[c10[a] != c10[b]].to_numpy()
        exact = len(np.unique(np.abs(nonzero))) == len(nonzero)  # chosen after zeros go
        raw.append(stats.wilcoxon(nonzero, method="exact" if exact else "asymptotic").pvalue)
        assert pairs.set_index(["a", "b"]).loc[(a, b), "zeros"] == len(c10) - len(nonzero)
    np.testing.assert_allclose(pairs.p_value, raw, rtol=1e-6)
    order = np.argsort(raw)  # Holm: step-down, monotone, capped at 1
    holm = np.minimum(np.maximum.accumulate(np.array(raw)[order] * (3 - np.arange(3))), 1)
    np.testing.assert_allclose(pairs.p_holm.to_numpy()[order], holm, rtol=1e-6)
    ranks = stats.rankdata(-c10[methods].to_numpy(), axis=1).mean(axis=0)
    table = pd.read_csv(out / "table.csv")
    mine = table[table.target == "C10 val"].set_index("method")
    np.testing.assert_allclose(mine.loc[methods, "mean_rank"], ranks, atol=1e-8)
    np.testing.assert_allclose(mine.loc[methods, "median"], c10[methods].median(), atol=1e-8)


def test_one_post_hoc_procedure_is_named_and_drawn(report):
    """Wilcoxon-Holm is the one post-hoc procedure: no Nemenyi p-values beside it, and the
    critical-difference diagram's bars come from it."""
    out, _ = report
    md = (out / "report.md").read_text()
    assert "**Primary post-hoc procedure**: two-sided Wilcoxon signed-rank tests" in md
    assert "nb201-table5 (seeds as blocks): 3 tests" in md
    assert "Nemenyi" not in md
    assert "bars: Wilcoxon-Holm p ≥ 0.05" in (out / "cd-diagram.svg").read_text()


def test_effect_sizes_on_known_differences():
    assert report_stats.rank_biserial(np.array([1.0, 2.0, 3.0])) == 1.0
    assert report_stats.rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx(1 / 3)
    assert np.isnan(report_stats.rank_biserial(np.zeros(4)))  # no nonzero difference


def test_bootstrap_interval_is_scipys_bca_on_the_cells_own_stream():
    values = np.arange(20.0) ** 1.5
    low, high = report_stats.bootstrap_interval(values, "b/t/m")
    expected = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=report_stats.RESAMPLES,
        rng=report_stats.bootstrap_generator("b/t/m"),
    ).confidence_interval
    assert (low, high) == (expected.low, expected.high)
    assert report_stats.bootstrap_interval(values, "b/t/other") != (low, high)
    assert report_stats.bootstrap_interval(np.full(5, 3.0), "x") == (3.0, 3.0)


def test_median_band_is_the_order_statistic_interval():
    rows = np.arange(20.0)[:, None] * np.ones((1, 3))
    rows[0, 2] = np.nan
    median, low, high = anytime.median_band(rows)
    # n = 20: the 6th and 15th order statistics (Conover, Table A3)
    assert list(median[:2]) == [9.5, 9.5] and list(low[:2]) == [5, 5] and list(high[:2]) == [14, 14]
    assert np.isnan(median[2]) and np.isnan(low[2])


def test_anytime_plots_the_seed_mean_and_reports_no_bias_under_the_mean_policy(report):
    out, _ = report
    md = (out / "report.md").read_text()
    assert "incumbent's test_accuracy_hp12, mean over the table's seeds" in md
    bias = pd.read_csv(out / "selection-bias.csv")
    assert (bias.bias_mean == 0).all()  # the search signal is the seed mean: nothing to select
    auc = pd.read_csv(out / "anytime-auc.csv")
    assert sorted(set(auc.budget)) == [1200, 3000, 6000, 12000]
    assert (auc["mean"] < 100).all() and (auc.n == SEEDS).all()


def test_checklist_fails_without_a_random_search_baseline(recorded):
    folder, _, subset = recorded
    harness.make_report([subset], out=folder / "no-rs")
    md = (folder / "no-rs" / "report.md").read_text()
    assert "| random search baseline present | FAIL | nb201-table5: none |" in md
    assert "| test data never seen by a strategy | pass |" in md
    assert "| hardware and library versions recorded | pass |" in md


def test_two_records_of_one_experiment_are_not_pooled_as_two_benchmarks(recorded):
    """The second record repeats the first seed by seed: it is ranked beside it, but the
    pooled tests would count the same evidence twice, so there are none, and the report
    says why."""
    folder, full, subset = recorded
    harness.make_report([full, subset], out=folder / "both", target="C100 test")
    ranks = pd.read_csv(folder / "both" / "ranks.csv").set_index("method")
    # two records of one experiment are told apart by their run ids
    names = [f"nb201-table5@{full[:8]}", f"nb201-table5@{subset[:8]}"]
    assert list(ranks.columns) == [*names, "all"]
    assert np.isnan(ranks.loc["RS", names[1]]) and ranks["all"].isna().all()
    pairs = pd.read_csv(folder / "both" / "pairwise.csv")
    assert set(pairs.family) == set(names)
    md = (folder / "both" / "report.md").read_text()
    assert f"{names[1]} repeats {names[0]} (same table and target; 2 of 2 methods" in md
    assert "Fewer than two distinct benchmarks remain: no pooled test." in md


def test_bad_requests_end_in_one_line(recorded):
    folder = recorded[0]
    assert_clean_failure(
        harness_cli("report", "no-such-experiment", cwd=folder), "no finished experiment"
    )
    assert_clean_failure(harness_cli("report", "nb201-table5", "t5-no-rs", cwd=folder), "--out")
    assert_clean_failure(
        harness_cli(
            "report", "nb201-table5", "--newest", "--target", "nope", "--out", "x", cwd=folder
        ),
        "[--target]",
    )
    assert_clean_failure(
        harness_cli("report", "nb201-table5", "--out", "/etc/hostname", cwd=folder),
        "not a folder",
    )
    with pytest.raises(HarnessError, match="at least one experiment"):
        harness.make_report([])


def test_a_record_without_seed_means_plots_the_observed_value_and_says_so(recorded, monkeypatch):
    folder, full, _ = recorded
    monkeypatch.setattr("harness.report.study.load_incumbents", lambda parent_id, store: None)
    files = harness.make_report([full], out=folder / "observed")
    md = (folder / "observed" / "report.md").read_text()
    assert "incumbent's test_accuracy_hp12 as observed (one drawn seed, not the mean)" in md
    assert "No record of this study holds its incumbents' seed means." in md
    assert "selection-bias.csv" not in {f.name for f in files}


def test_the_digits_plot_shows_seed_means_that_never_pass_the_tables_optimum(
    mlflow_store,
):
    from harness.record import load_experiment
    from harness.report.study import build_study

    spec = REPO / "benchmarks" / "digits" / "compare.toml"
    done = harness.run(spec, seeds=range(4), results=mlflow_store / "digits")  # not the repo's
    study = build_study([load_experiment(done.run_id)])
    (benchmark,) = study.benchmarks
    q = anytime.quantity(benchmark, "valid")
    assert q.column == "sealed.test_accuracy"
    optimum = benchmark.optimal["test"]  # the same metric, digits/e4/test/accuracy
    for method in benchmark.methods:
        for _, values in anytime.run_steps(benchmark, method, q).values():
            assert values.max() <= optimum
    observed = max(
        benchmark.trajectories[m]["sealed.test_accuracy"].max() for m in benchmark.methods
    )
    assert observed > optimum  # one drawn seed's value can pass it: that was the old plot
    bias = pd.read_csv(done.files[0].parent / "selection-bias.csv")
    assert (bias.bias_mean > 0).all()  # a drawn seed that selected its cell flatters it


def _full_disk() -> None:
    raise OSError(28, "No space left on device", "/report/.cd-diagram.png.tmp-1")


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_figures_drawn_beside_the_statistics_return_their_value_or_their_error() -> None:
    assert plots.Drawing(lambda: ["anytime.png"]).result() == ["anytime.png"]
    with pytest.raises(OSError) as raised:  # as drawn here: write_report names the file
        plots.Drawing(_full_disk).result()
    assert raised.value.filename == "/report/.cd-diagram.png.tmp-1"


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="figures are drawn in this process"
)
def test_a_figure_process_that_dies_fails_the_report_in_one_line() -> None:
    with pytest.raises(HarnessError, match="ended without an answer"):
        plots.Drawing(_killed).result()
