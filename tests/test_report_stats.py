"""The report's statistics on studies built for the purpose, cross-checked against SciPy.

The studies here are value objects assembled in memory from per-seed values (what
``build_study`` makes from MLflow records), so each test controls exactly the evidence a
statistic sees: identical methods, repeated benchmarks, zero differences, published rows.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.errors import ConfigError
from harness.record import ExperimentRecord
from harness.report import plots
from harness.report import stats as report_stats
from harness.report.study import Benchmark, Study, choose_targets, target_role


def benchmark(
    name: str,
    values: dict[str, np.ndarray],
    table: str = "t1",
    targets: dict[str, str] | None = None,
    published: dict | None = None,
    dataset: str = "d",
) -> Benchmark:
    """A recorded experiment whose method *m* scored ``values[m][s]`` on seed *s*, on every
    target (``targets``: label -> metric, by default one validation target)."""
    targets = targets or {"valid": f"{dataset}/e4/valid/accuracy"}
    runs = {
        method: pd.DataFrame(
            {"seed": np.arange(len(v)), **{f"target.{label}": v for label in targets}}
        )
        for method, v in values.items()
    }
    resolved = {
        "experiment": {"name": name, "title": name, "notes": []},
        "search": {"dataset": dataset, "seed_policy": "mean", "seed": None, "cost": "table"},
        "strategies": [{"name": m, "kind": "k", "params": {}} for m in values],
        "targets": [{"label": k, "metric": v} for k, v in targets.items()],
        "published": {"source": "", "values": published or {}},
    }
    record = ExperimentRecord(
        parent_id=name,
        resolved=resolved,
        spec_text="",
        table={"sha256": table, "optimal": dict.fromkeys(targets, 100.0)},
        params={},
        tags={},
        children={},
        runs=runs,
        child_params={},
    )
    return Benchmark(name, record, None)


def study_of(*benchmarks: Benchmark, target: str | None = None) -> Study:
    rows = [
        pd.DataFrame(
            {
                "benchmark": b.name,
                "method": method,
                "seed": runs["seed"],
                "target": label,
                "value": runs[f"target.{label}"],
                "score": runs[f"target.{label}"],  # higher is better: the value itself
                "regret": 100.0 - runs[f"target.{label}"],
            }
        )
        for b in benchmarks
        for method, runs in b.record.runs.items()
        for label in b.labels
    ]
    bs = list(benchmarks)
    return Study(bs, choose_targets(bs, target), pd.concat(rows, ignore_index=True))


def noisy(seed: int, n: int = 100, shift: float = 0.0) -> np.ndarray:
    return np.round(90 + shift + np.random.default_rng(seed).normal(0, 1, n), 2)


def test_identical_methods_are_named_and_tested_as_one():
    rs = noisy(0)
    b = benchmark("b", {"RS": rs, "SH": rs.copy(), "REA": noisy(1, shift=0.5), "HB": rs.copy()})
    study = study_of(b)
    assert report_stats.identical_groups(study) == {"b": [["RS", "SH", "HB"]]}
    pairs = report_stats.pairwise(study)
    assert set(zip(pairs.a, pairs.b, strict=True)) == {("RS", "REA")}
    assert pairs.family_size.tolist() == [1]  # Holm divides among one test, not six
    (result,) = report_stats.friedman(study)
    assert result.methods == ["RS", "REA"] and result.undefined.startswith("needs three")


def test_a_repeated_benchmark_enters_the_pooled_tests_once():
    """Two records of one table whose methods mostly agree seed by seed (1 and 4 workers)
    count once: the pooled family does not see the same evidence twice."""
    first = {m: noisy(i, shift=0.1 * i) for i, m in enumerate(["RS", "ASHA", "REA", "TPE"])}
    second = dict(first, REA=noisy(9, shift=0.2), TPE=first["TPE"].copy())
    other = {m: noisy(20 + i) for i, m in enumerate(first)}
    study = study_of(
        benchmark("1w", first), benchmark("4w", second), benchmark("c", other, table="t2")
    )
    (repeat,) = report_stats.near_duplicates(study)
    assert (repeat.kept, repeat.dropped, repeat.repeated) == ("1w", "4w", ["RS", "ASHA", "TPE"])
    pool = report_stats.pool(study)
    assert list(pool.values.index) == ["1w", "c"]
    pooled = report_stats.pairwise(study, pool)
    pooled = pooled[pooled.family == report_stats.POOLED]
    assert (pooled.n == 2).all()  # two benchmarks, not 300 (benchmark, seed) blocks
    # another table, or another target metric, is no repeat
    moved = benchmark("4w", second, targets={"valid": "d/e4/valid/loss"})
    assert report_stats.near_duplicates(study_of(benchmark("1w", first), moved)) == []


def test_pooled_tests_take_benchmarks_as_blocks():
    """Seeds are blocks only within a benchmark: across benchmarks each block is one
    benchmark's mean, and Wilcoxon and Friedman see exactly those (SciPy's numbers)."""
    names = ["RS", "ASHA", "REA"]
    bs = [
        benchmark(f"b{k}", {m: noisy(10 * k + i, shift=0.05 * i) for i, m in enumerate(names)},
                  table=f"t{k}")
        for k in range(5)
    ]  # fmt: skip
    study = study_of(*bs)
    pool = report_stats.pool(study)
    means = np.array([[b.record.runs[m]["target.valid"].mean() for m in names] for b in bs])
    np.testing.assert_allclose(pool.values.to_numpy(), means)
    pairs = report_stats.pairwise(study, pool).set_index(["family", "a", "b"])
    for a, b in combinations(range(3), 2):
        row = pairs.loc[(report_stats.POOLED, names[a], names[b])]
        expected = stats.wilcoxon(means[:, a] - means[:, b], method="exact").pvalue
        assert row.n == 5 and row.test == "exact" and row.p_value == pytest.approx(expected)
    assert report_stats.smallest_p(5) == pytest.approx(2 / 32)
    pooled = report_stats.friedman(study, pool)[-1]
    assert (pooled.family, pooled.unit, pooled.blocks) == (report_stats.POOLED, "benchmarks", 5)
    assert pooled.statistic == pytest.approx(stats.friedmanchisquare(*means.T).statistic)


def test_zero_differences_are_counted_and_the_exact_test_is_chosen_after_dropping_them():
    nonzero = np.arange(1.0, 41.0) * np.where(np.arange(40) % 3 == 0, -1, 1)  # 40, untied
    differences = np.concatenate([nonzero, np.zeros(20)])
    row = report_stats.signed_rank(differences)
    assert (row["n"], row["zeros"], row["test"]) == (60, 20, "exact")
    assert row["p_value"] == pytest.approx(stats.wilcoxon(nonzero, method="exact").pvalue)
    # Pratt's rule keeps the zeros in the ranking; exact given the ranks, as SciPy's
    # sign-flip enumeration computes it on a sample small enough to enumerate
    few = np.array([0.2, 0.0, 0.0, -0.1, 0.3, 0.3, -0.4, 0.5])
    pratt = stats.wilcoxon(few, zero_method="pratt", method=stats.PermutationMethod()).pvalue
    assert report_stats.signed_rank(few)["p_pratt"] == pytest.approx(pratt)
    assert report_stats.pratt_exact(nonzero) == pytest.approx(row["p_value"])  # no zeros
    large = np.concatenate([noisy(0, 80) - 90, np.zeros(10)])
    pratt = stats.wilcoxon(large, zero_method="pratt", method="asymptotic").pvalue
    assert report_stats.signed_rank(large)["p_pratt"] == pytest.approx(pratt)
    # ties among the sizes: the exact distribution no longer holds, the normal one does
    tied = report_stats.signed_rank(np.array([1.0, 1.0, -2.0, 3.0, 3.0, 4.0, 0.0]))
    assert tied["test"] == "normal"
    expected = stats.wilcoxon(np.array([1.0, 1, -2, 3, 3, 4]), method="asymptotic").pvalue
    assert tied["p_value"] == pytest.approx(expected)
    assert report_stats.signed_rank(np.zeros(5))["test"] == "none"


def test_effect_sizes_treat_ties_alike():
    """Both effect sizes leave zero differences out: padding with ties moves neither."""
    differences = np.array([3.0, -1.0, -2.0, 0.5])
    padded = np.concatenate([differences, np.zeros(10)])
    for key in ("rank_biserial", "p_improvement"):
        assert report_stats.signed_rank(padded)[key] == report_stats.signed_rank(differences)[key]
    assert report_stats.signed_rank(differences)["p_improvement"] == 0.5
    assert report_stats.rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx(1 / 3)


def test_holm_families_are_per_benchmark_and_pooled_as_computed():
    from statsmodels.stats.multitest import multipletests

    names = ["A", "B", "C", "D"]
    bs = [
        benchmark(f"b{k}", {m: noisy(10 * k + i, shift=0.3 * i) for i, m in enumerate(names)},
                  table=f"t{k}")
        for k in range(3)
    ]  # fmt: skip
    pairs = report_stats.pairwise(study_of(*bs))
    assert set(pairs.family) == {"b0", "b1", "b2", report_stats.POOLED}
    for _, family in pairs.groupby("family"):
        assert (family.family_size == 6).all()
        holm = multipletests(family.p_value, method="holm")[1]
        np.testing.assert_allclose(family.p_holm, holm)


def test_undefined_statistics_say_why_and_warn_nothing():
    """SciPy warns on a Friedman statistic of blocks that tie every method (0/0): the
    report says undefined instead, and nothing reaches the terminal."""
    tie = pd.DataFrame({"A": [1.0, 2.0], "B": [1.0, 2.0], "C": [1.0, 2.0]})
    one = np.array([90.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = report_stats._friedman("f", "seeds", tie, 0)
        (single,) = report_stats.friedman(
            study_of(benchmark("b", {"A": one, "B": one + 1, "C": one + 2}))
        )
        pairs = report_stats.pairwise(study_of(benchmark("b", {"A": one, "B": one + 1})))
    assert found.undefined == "every block ties every method (0/0)"
    assert np.isnan(found.statistic)
    assert single.undefined == "needs two or more complete blocks (1 here)"
    assert pairs.test.tolist() == ["exact"] and pairs.p_value.tolist() == [1.0]


def test_targets_match_by_role_across_benchmarks():
    assert target_role("cifar10/hp200/ori-test/accuracy", "cifar10-valid") == "test"
    assert target_role("cifar10-valid/hp200/x-valid/accuracy", "cifar10-valid") == "validation"
    assert target_role("cifar100/hp200/x-test/accuracy", "cifar10-valid") is None
    assert target_role("digits/e4/train/accuracy", "digits") is None
    values = {"A": noisy(0, 5), "B": noisy(1, 5)}
    digits = benchmark(
        "digits", values, targets={"valid": "d/e4/valid/accuracy", "test": "d/e4/test/accuracy"}
    )
    nb201 = benchmark(
        "nb201",
        values,
        table="t2",
        dataset="cifar10-valid",
        targets={"C10 test": "cifar10/hp200/ori-test/accuracy",
                 "C100 test": "cifar100/hp200/x-test/accuracy"},
    )  # fmt: skip
    # NB201's spec ranks no validation target: both benchmarks rank their test target
    assert choose_targets([digits, nb201]) == {"digits": "test", "nb201": "C10 test"}
    assert choose_targets([digits]) == {"digits": "valid"}
    assert choose_targets([digits, nb201], "role:test") == {"digits": "test", "nb201": "C10 test"}
    with pytest.raises(ConfigError, match="nb201 has no validation target"):
        choose_targets([digits, nb201], "role:validation")
    mixed = study_of(digits, nb201, target=None)
    assert mixed.role == "test"
    other = benchmark("other", values, table="t3", targets={"x": "e/e4/valid/accuracy"})
    unpooled = study_of(digits, other)
    assert unpooled.role is None and report_stats.pool(unpooled).values is None
    assert "neither share one role" in report_stats.pool(unpooled).notes[0]
    # a transfer target (another dataset, no role) pools when every benchmark reads it
    transfer = {"C100 test": "cifar100/hp200/x-test/accuracy"}
    both = study_of(*(benchmark(n, values, table=n, dataset="c10", targets=transfer)
                      for n in ("x", "y")))  # fmt: skip
    assert both.role is None and both.comparable
    assert list(report_stats.pool(both).values.index) == ["x", "y"]


def test_reproduced_is_decided_by_welch_and_tost():
    from statsmodels.stats.weightstats import ttost_ind

    rng = np.random.default_rng(3)

    def exact_sample(mean: float, std: float, n: int) -> np.ndarray:
        z = rng.normal(size=n)
        return mean + std * (z - z.mean()) / z.std(ddof=1)

    ours = exact_sample(93.70, 0.36, 100)
    published = {"RS": {"valid": [93.64, 0.36, 500]}, "REA": {"valid": [93.20, 0.30, 500]},
                 "TPE": {"valid": [93.70, 0.36]}, "BOHB": {"valid": [93.50, 0.80, 3]}}  # fmt: skip
    b = benchmark("b", dict.fromkeys(published, ours), published=published)
    summary = report_stats.summary(study_of(b))
    found = report_stats.reproduction(summary).set_index("method")
    rs = found.loc["RS"]
    welch = stats.ttest_ind_from_stats(93.70, 0.36, 100, 93.64, 0.36, 500, equal_var=False)
    assert rs.welch_p == pytest.approx(welch.pvalue, rel=1e-6)
    theirs = exact_sample(93.64, 0.36, 500)
    margin = report_stats.EQUIVALENCE_MARGIN * 0.36
    tost = ttost_ind(ours, theirs, -margin, margin, usevar="unequal")[0]
    assert rs.tost_p == pytest.approx(tost, rel=1e-6)
    assert rs.verdict == "reproduced"
    assert found.loc["REA", "verdict"] == "different"  # 0.5 above, far outside ±0.15
    assert found.loc["TPE", "verdict"] == "untested: the spec gives no published n"
    assert found.loc["BOHB", "verdict"] == "inconclusive"  # three published runs say little


def test_a_small_gap_in_published_sigma_can_still_be_a_significant_difference():
    """Δ = +0.17σ against 500 published runs: Welch rejects equal means (the audit's BOHB);
    only the equivalence test can call it reproduced, within its stated margin."""
    ours = np.repeat([93.61 + 0.17 * 0.52 - 0.5, 93.61 + 0.17 * 0.52 + 0.5], 250)
    b = benchmark("b", {"BOHB": ours}, published={"BOHB": {"valid": [93.61, 0.52, 500]}})
    (row,) = report_stats.reproduction(report_stats.summary(study_of(b))).itertuples()
    assert row.welch_p < 0.01 and row.verdict == "reproduced"


def test_colours_do_not_repeat_beyond_eight_methods():
    colours = [plots.style(i)["color"] for i in range(40)]
    assert len(set(colours)) == 40
    assert colours[:8] == list(plots.COLOURS)  # the first eight keep the colour-blind palette


def test_a_spec_may_give_the_published_number_of_runs():
    from harness.spec import _published, _strategies
    from harness.values import MetricRef

    strategies = _strategies([{"name": "RS", "kind": "random_search"}])

    class Target:
        label, ref = "valid", MetricRef.parse("d/e4/valid/accuracy")

    found, _ = _published({"RS": {"valid": [93.0, 0.3, 500]}}, strategies, (Target,))
    assert found == {"RS": {"valid": (93.0, 0.3, 500.0)}}
    for bad in ([93.0, 0.3, 1], [93.0, 0.3, 2.5], [93.0]):
        with pytest.raises(ConfigError, match=r"\[mean, std, n\]"):
            _published({"RS": {"valid": bad}}, strategies, (Target,))


def test_a_report_of_tied_methods_says_what_is_undefined_and_prints_no_warning(tmp_path):
    """Three random searches share every draw (streams derive from the master seed alone),
    so at two seeds every block ties: the terminal shows harness's lines only, and
    report.md names the identical methods and why Friedman's test has no value."""
    import tomllib

    from conftest import REPO, dump_toml, harness_cli

    spec = REPO / "benchmarks" / "digits" / "compare.toml"
    raw = tomllib.loads(spec.read_text())
    raw["table"]["path"] = str((spec.parent / raw["table"]["path"]).resolve())
    raw["experiment"]["results"] = str(tmp_path / "out")
    raw["runs"]["seeds"] = [0, 1]
    raw["strategy"] = [{"name": n, "kind": "random_search"} for n in ("RS", "RS2", "RS3")]
    (tmp_path / "tied.toml").write_text(dump_toml(raw))
    shown = "default::RuntimeWarning,default::UserWarning"  # whatever the caller filters
    done = harness_cli("run", "tied.toml", cwd=tmp_path, PYTHONWARNINGS=shown)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Warning" not in done.stdout
    md = (tmp_path / "out" / "report.md").read_text()
    assert "- digits-compare: RS2, RS3 equal RS on every seed and every target" in md
    assert "| digits-compare | 2 seeds | 1 | undefined | undefined: needs three or more" in md
