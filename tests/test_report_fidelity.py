"""harness compare-tables: rank agreement between two tables of one space."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import REPO, assert_clean_failure, harness_cli, needs_nb201
from scipy import stats

from harness.report.fidelity import fidelity

DIGITS = REPO / "tabular" / "nb201-digits.h5"


def test_agreement_is_scipys_and_top_k_finds_the_shared_best():
    reference = np.arange(200.0)
    proxy = reference.copy()
    proxy[:100] = proxy[:100][::-1]  # the worse half reversed, the best half intact
    proxy[5] = np.nan  # a missing cell is left out of both
    found = fidelity(proxy, reference, top_k=(10, 100))
    keep = np.isfinite(proxy)
    (overall, decile) = found.agreements
    assert overall.n == 199
    assert overall.kendall_tau == pytest.approx(stats.kendalltau(proxy[keep], reference[keep])[0])
    assert overall.spearman_rho == pytest.approx(stats.spearmanr(proxy[keep], reference[keep])[0])
    assert decile.cells == "reference's top decile" and decile.kendall_tau == pytest.approx(1.0)
    assert found.top_k_overlap == {10: 1.0, 100: 1.0}
    assert found.top_k_percentile[10] == pytest.approx(100 * (199 - 4.5) / 199)


def test_isomorphism_classes_count_each_class_once():
    reference = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    proxy = np.array([1.0, 1.0, 3.0, 2.0, 6.0, 5.0])
    classes = np.array([0, 0, 2, 3, 4, 4])  # cells 1 and 5 copy their representatives
    found = fidelity(proxy, reference, classes, top_k=(1,))
    assert [a.cells for a in found.agreements] == ["all cells", "one per isomorphism class"]
    assert found.agreements[1].n == 4
    assert found.agreements[1].kendall_tau == pytest.approx(
        stats.kendalltau([1.0, 3.0, 2.0, 6.0], [1.0, 3.0, 4.0, 5.0])[0]
    )
    assert found.top_k_overlap == {1: 0.0}


@pytest.mark.parametrize(
    ("proxy", "needle"),
    [
        (np.full(50, np.nan), "0 cells hold both the proxy (0 cells hold it)"),
        (np.where(np.arange(50) == 3, 1.0, np.nan), "1 cells hold both"),
        (np.full(50, 0.5), "the proxy is 0.5 on all 50 cells compared"),
    ],
    ids=["all-nan", "one-cell", "constant"],
)
def test_a_metric_that_ranks_nothing_is_an_error_not_nan(recwarn, proxy, needle):
    from harness.errors import TableError

    with pytest.raises(TableError, match=re.escape(needle)) as raised:
        fidelity(proxy, np.arange(50.0))
    assert "\n" not in str(raised.value)
    assert not recwarn.list  # no numpy or scipy warning on the way


def test_a_top_decile_of_equal_values_is_left_out_without_warnings(recwarn):
    reference = np.r_[np.arange(90.0), np.full(10, 100.0)]
    proxy = np.r_[np.arange(90.0), np.full(10, 7.0)]
    found = fidelity(proxy, reference, top_k=(10,))
    assert [a.cells for a in found.agreements] == ["all cells"]
    assert not recwarn.list


@needs_nb201()
def test_the_digits_tables_fidelity_to_nb201_cifar10_is_what_the_readme_states(
    nb201_built, tmp_path
):
    done = harness_cli(
        "compare-tables",
        str(DIGITS),
        str(nb201_built[0]),
        "--metric-a",
        "digits/e4/valid/accuracy",
        "--metric-b",
        "cifar10/hp200/ori-test/accuracy",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[4].split() == ["all", "cells", "15625", "0.166", "0.241"]
    assert lines[6].split()[-2:] == ["0.101", "0.153"]
    assert "top 100: 0% also in the proxy's top 100; median percentile on the proxy 65.5" in (
        done.stdout
    )
    readme = (REPO / "README.md").read_text()
    assert "Kendall τ 0.17" in readme and "65.5" in readme


def test_bad_variables_end_in_one_line(tmp_path):
    common = ["compare-tables", str(DIGITS), str(DIGITS)]
    assert_clean_failure(
        harness_cli(*common, "--metric-a", "digits/e4", "--metric-b", "x/y/z/w", cwd=tmp_path),
        "[--metric-a]",
    )
    assert_clean_failure(
        harness_cli(
            *common,
            "--metric-a",
            "digits/e4/valid/accuracy",
            "--metric-b",
            "digits/e4/valid/nothing",
            cwd=tmp_path,
        ),
        "nothing",
    )
