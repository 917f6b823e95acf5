"""BOHB's KDE sampler: statsmodels' densities, hpbandster's rules, determinism, learning."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.strategies.kde import (
    CategoricalKDE,
    KDESampler,
    _pick,
    normal_reference_bandwidth,
)

kernel_density = pytest.importorskip("statsmodels.nonparametric.kernel_density")

NB201_LIKE = (5,) * 6


def always(_: tuple[int, ...]) -> bool:
    return True


def statsmodels_kde(data: np.ndarray, bandwidth: np.ndarray | None = None):
    """statsmodels' KDE as hpbandster builds it; its single-level columns divide by zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kde = kernel_density.KDEMultivariate(
            data=data.astype(float), var_type="u" * data.shape[1], bw="normal_reference"
        )
    if bandwidth is not None:
        kde.bw = bandwidth
    return kde


def statsmodels_pdf(kde, points: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.array([kde.pdf(list(map(float, p))) for p in points])


def random_problem(rng: np.random.Generator) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Choices, training codes and query codes, often with single-level columns."""
    width = int(rng.integers(1, 8))
    choices = tuple(int(c) for c in rng.integers(1, 6, size=width))
    rows = int(rng.integers(width + 1, width + 30))
    spread = rng.integers(1, np.array(choices) + 1)  # some columns use few of their options
    data = rng.integers(0, spread, size=(rows, width))
    points = rng.integers(0, np.array(choices), size=(12, width))
    return choices, data, points


# --- densities and bandwidths equal statsmodels' --------------------------------------


def test_bandwidths_equal_statsmodels_normal_reference() -> None:
    rng = np.random.default_rng(11)
    for _ in range(100):
        _, data, _ = random_problem(rng)
        np.testing.assert_allclose(
            normal_reference_bandwidth(data), statsmodels_kde(data).bw, rtol=1e-12, atol=0
        )


@pytest.mark.parametrize("min_bandwidth", [1e-3, 0.3])
def test_densities_equal_statsmodels_including_its_infinities(min_bandwidth: float) -> None:
    rng = np.random.default_rng(12)
    for _ in range(100):
        choices, data, points = random_problem(rng)
        bandwidth = np.clip(normal_reference_bandwidth(data), min_bandwidth, None)
        ours = CategoricalKDE(data, bandwidth, choices).pdf(points)
        theirs = statsmodels_pdf(statsmodels_kde(data, bandwidth), points)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, equal_nan=True)


def test_levels_are_the_distinct_values_of_the_training_column() -> None:
    # column 0 uses 2 of its 5 options, column 1 a single one: L - 1 = 1 and 0
    data = np.array([[0, 3], [2, 3], [0, 3], [2, 3]])
    bandwidth = np.array([0.2, 0.1])
    kde = CategoricalKDE(data, bandwidth, (5, 5))
    absent_from_column_0 = kde.pdf([[4, 3]])[0]
    assert absent_from_column_0 == pytest.approx(0.2 / (2 - 1) * (1 - 0.1))
    assert kde.pdf([[0, 1]])[0] == np.inf  # 0.1 / 0 in the single-level column
    points = np.array([[4, 3], [0, 1]])
    theirs = statsmodels_pdf(statsmodels_kde(data, bandwidth), points)
    np.testing.assert_allclose(kde.pdf(points), theirs, rtol=1e-12)


def test_a_bandwidth_above_one_makes_a_match_count_negatively_as_in_statsmodels() -> None:
    data = np.array([[0], [4], [0], [4], [2]])
    bandwidth = normal_reference_bandwidth(data)
    assert bandwidth[0] > 1
    kde = CategoricalKDE(data, bandwidth, (5,))
    assert kde.pdf([[2]])[0] < kde.pdf([[1]])[0]  # the seen value scores below an unseen one
    np.testing.assert_allclose(
        kde.pdf([[2], [1]]), statsmodels_pdf(statsmodels_kde(data), [[2], [1]]), rtol=1e-12
    )


# --- hpbandster's rules, against a literal transcription on statsmodels ----------------


class Transcription:
    """hpbandster's ``new_result``/``get_config`` written out step by step on statsmodels.

    It draws from ``rng`` in the order :class:`KDESampler` does, so the two must propose
    the same configurations; everything else follows hpbandster's own loop (bohb.py).
    """

    def __init__(self, choices, rng, *, num_samples, random_fraction, min_bandwidth) -> None:
        self.choices, self.rng = np.array(choices), rng
        self.num_samples, self.random_fraction = num_samples, random_fraction
        self.min_bandwidth, self.min_points = min_bandwidth, len(choices) + 1
        self.configs: dict[float, list] = {}
        self.losses: dict[float, list] = {}
        self.kdes: dict[float, tuple] = {}
        self.model_budget: float | None = None

    def observe(self, decisions, budget, loss) -> None:
        loss = loss if np.isfinite(loss) else np.inf
        self.configs.setdefault(budget, [])
        self.losses.setdefault(budget, [])
        if max([*self.kdes, -np.inf]) > budget:
            return
        self.configs[budget].append(decisions)
        self.losses[budget].append(loss)
        n = len(self.configs[budget])
        if n <= self.min_points - 1:
            return
        n_good = max(self.min_points, 15 * n // 100)
        n_bad = max(self.min_points, 85 * n // 100)
        order = np.argsort(self.losses[budget], kind="stable")
        configs = np.array(self.configs[budget], dtype=float)
        good, bad = configs[order[:n_good]], configs[order[n_good : n_good + n_bad]]
        if good.shape[0] <= good.shape[1] or bad.shape[0] <= bad.shape[1]:
            return
        kde_good, kde_bad = statsmodels_kde(good), statsmodels_kde(bad)
        kde_good.bw = np.clip(kde_good.bw, self.min_bandwidth, None)
        kde_bad.bw = np.clip(kde_bad.bw, self.min_bandwidth, None)
        self.kdes[budget] = (kde_good, kde_bad)

    def random(self, is_valid) -> tuple[int, ...]:
        while True:
            sample = tuple(int(v) for v in self.rng.integers(0, self.choices))
            if is_valid(sample):
                return sample

    def propose(self, is_valid) -> tuple[int, ...]:
        self.model_budget = None
        if not self.kdes or self.rng.random() < self.random_fraction:
            return self.random(is_valid)
        budget = max(self.kdes)
        good, bad = self.kdes[budget]
        shape = (self.num_samples, len(self.choices))
        rows = self.rng.integers(len(good.data), size=self.num_samples)
        draws = self.rng.random(shape)
        uniform = self.rng.integers(0, self.choices, size=shape)
        best, best_vector = np.inf, None
        for i in range(self.num_samples):
            vector = [
                int(m) if draws[i, k] < 1 - max(bw, self.min_bandwidth) else int(uniform[i, k])
                for k, (m, bw) in enumerate(zip(good.data[rows[i]], good.bw, strict=True))
            ]
            l_x, g_x = statsmodels_pdf(good, [vector])[0], statsmodels_pdf(bad, [vector])[0]
            value = max(1e-32, g_x) / max(l_x, 1e-32)
            if not np.isfinite(value) and np.isfinite(l_x):
                best_vector = vector
                break
            if value < best:
                best, best_vector = value, vector
        if best_vector is None or not is_valid(tuple(best_vector)):
            return self.random(is_valid)
        self.model_budget = budget
        return tuple(best_vector)


def hpbandster_choice(good: list[float], bad: list[float]) -> int | None:
    """The candidate hpbandster's loop keeps, from its densities (Python's max, NaN and all)."""
    best, chosen = np.inf, None
    for i, (l_x, g_x) in enumerate(zip(good, bad, strict=True)):
        value = max(1e-32, g_x) / max(l_x, 1e-32)
        if not np.isfinite(value) and np.isfinite(l_x):
            return i
        if value < best:
            best, chosen = value, i
    return chosen


def test_the_pick_follows_hpbandsters_loop_through_nan_inf_and_ties() -> None:
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.5, 1e-40, 0.25, 0.25, 3.0]
    rng = np.random.default_rng(6)
    for _ in range(3000):
        good = rng.choice(specials, size=int(rng.integers(1, 6)))
        bad = rng.choice(specials, size=len(good))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = hpbandster_choice(list(good), list(bad))
        assert _pick(good.tolist(), bad.tolist()) == expected, (good, bad)


def hamming(target: tuple[int, ...]) -> Callable[[tuple[int, ...]], int]:
    return lambda decisions: sum(a != b for a, b in zip(decisions, target, strict=True))


@pytest.mark.parametrize("min_bandwidth", [1e-3, 0.3])
def test_proposals_equal_hpbandsters_loop_on_statsmodels(min_bandwidth: float) -> None:
    """Two budgets, NaN losses, invalid tuples: every proposal and its origin agree."""
    loss = hamming((1, 3, 0, 4, 2, 1))
    ours = KDESampler(
        NB201_LIKE, np.random.default_rng(5), num_samples=16, min_bandwidth=min_bandwidth
    )
    theirs = Transcription(
        NB201_LIKE,
        np.random.default_rng(5),
        num_samples=16,
        random_fraction=1 / 3,
        min_bandwidth=min_bandwidth,
    )

    def is_valid(decisions: tuple[int, ...]) -> bool:
        return decisions[5] != 4

    model_picks = 0
    for step in range(90):
        proposal = ours.propose(is_valid)
        assert proposal == theirs.propose(is_valid), step
        assert ours.last_model_budget == theirs.model_budget, step
        model_picks += ours.last_model_budget is not None
        value = np.nan if step % 13 == 0 else float(loss(proposal))
        budget = 1.0 if step < 45 else 3.0
        ours.observe(proposal, budget, value)
        theirs.observe(proposal, budget, value)
    assert model_picks > 20
    assert set(ours.models) == set(theirs.kdes) == {1.0, 3.0}


# --- when a model exists, and which answers ---------------------------------------------


def test_random_until_enough_observations_then_split_as_hpbandster() -> None:
    rng = np.random.default_rng(3)
    sampler = KDESampler(NB201_LIKE, np.random.default_rng(9))
    uniform = np.random.default_rng(9)  # without a model no fraction draw is made
    for count in range(1, 14):
        proposal = sampler.propose(always)
        assert proposal == tuple(uniform.integers(0, np.array(NB201_LIKE)))
        assert sampler.last_model_budget is None
        sampler.observe(proposal, 1.0, float(rng.random()))
        assert not sampler.models, count  # 7 good need 7 bad beside them: 14 points
    sampler.observe((0,) * 6, 1.0, 0.5)
    good, bad = sampler.models[1.0]
    assert (len(good.data), len(bad.data)) == (7, 7)
    for _ in range(136):
        sampler.observe(tuple(rng.integers(0, 5, size=6)), 1.0, float(rng.random()))
    good, bad = sampler.models[1.0]  # 150 points: 15 % good, the next 85 % bad
    assert (len(good.data), len(bad.data)) == (22, 127)


def test_the_largest_budget_with_a_model_answers_and_smaller_ones_are_then_dropped() -> None:
    rng = np.random.default_rng(4)
    sampler = KDESampler((3,) * 2, np.random.default_rng(4), random_fraction=0.0)

    def feed(budget: float, count: int) -> None:
        for _ in range(count):
            sampler.observe(tuple(rng.integers(0, 3, size=2)), budget, float(rng.random()))

    feed(1.0, 6)
    assert set(sampler.models) == {1.0}
    sampler.propose(always)
    assert sampler.last_model_budget == 1.0
    feed(9.0, 6)
    assert set(sampler.models) == {1.0, 9.0}
    sampler.propose(always)
    assert sampler.last_model_budget == 9.0
    before = sampler.models[1.0]
    feed(1.0, 20)
    assert sampler.models[1.0] is before  # never refitted: budget 9 has a model


def test_non_finite_losses_count_as_the_worst() -> None:
    sampler = KDESampler((4,), np.random.default_rng(0), min_points_in_model=3)
    for value, loss in [(0, np.nan), (1, -np.inf), (2, np.inf), (3, 5.0), (3, 6.0), (3, 7.0)]:
        sampler.observe((value,), 1.0, loss)
    good, bad = sampler.models[1.0]
    assert good.data[:, 0].tolist() == [3, 3, 3]
    assert bad.data[:, 0].tolist() == [0, 1, 2]  # ties among +inf kept in arrival order


# --- determinism, invalid proposals, validation -----------------------------------------


def run(sampler: KDESampler, steps: int, loss: Callable, is_valid=always) -> list[tuple]:
    proposals = []
    for _ in range(steps):
        proposal = sampler.propose(is_valid)
        sampler.observe(proposal, 1.0, float(loss(proposal)))
        proposals.append(proposal)
    return proposals


def test_same_rng_state_gives_the_same_proposals() -> None:
    loss = hamming((0, 1, 2, 3, 4, 0))
    first = run(KDESampler(NB201_LIKE, np.random.default_rng(21)), 80, loss)
    again = run(KDESampler(NB201_LIKE, np.random.default_rng(21)), 80, loss)
    other = run(KDESampler(NB201_LIKE, np.random.default_rng(22)), 80, loss)
    assert first == again
    assert first != other


def test_bandwidth_factor_changes_nothing_for_categorical_decisions() -> None:
    loss = hamming((0, 1, 2, 3, 4, 0))
    wide = run(KDESampler(NB201_LIKE, np.random.default_rng(2), bandwidth_factor=3.0), 60, loss)
    narrow = run(KDESampler(NB201_LIKE, np.random.default_rng(2), bandwidth_factor=1.0), 60, loss)
    assert wide == narrow


def test_an_invalid_model_pick_becomes_a_random_valid_proposal() -> None:
    target = (0, 2, 1, 0, 2, 1)
    sampler = KDESampler((3,) * 6, np.random.default_rng(8), random_fraction=0.0)

    def is_valid(decisions: tuple[int, ...]) -> bool:
        return decisions[:2] != (0, 2)  # the good region's corner is no architecture

    run(sampler, 40, hamming(target), is_valid)
    model, fallback = 0, 0
    for _ in range(200):
        proposal = sampler.propose(is_valid)
        assert is_valid(proposal)
        if sampler.last_model_budget is None:
            fallback += 1
        else:
            model += 1
    assert model > 0 and fallback > 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"top_n_percent": 0}, "top_n_percent"),
        ({"top_n_percent": 100}, "top_n_percent"),
        ({"num_samples": 0}, "num_samples"),
        ({"random_fraction": 1.5}, "random_fraction"),
        ({"bandwidth_factor": 0.0}, "bandwidth_factor"),
        ({"min_bandwidth": -1.0}, "min_bandwidth"),
        ({"min_points_in_model": 6}, "min_points_in_model"),
    ],
)
def test_bad_settings_name_their_field(params: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        KDESampler(NB201_LIKE, np.random.default_rng(0), **params)
    assert error.value.field == field


def test_bad_observations_are_refused() -> None:
    sampler = KDESampler(NB201_LIKE, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="decisions"):
        sampler.observe((0,) * 5, 1.0, 0.0)
    with pytest.raises(ConfigError, match="decisions"):
        sampler.observe((5,) * 6, 1.0, 0.0)
    with pytest.raises(ConfigError, match="budget"):
        sampler.observe((0,) * 6, 0.0, 0.0)


# --- does the model learn? -------------------------------------------------------------


def model_pick_losses(choices: tuple[int, ...], target: tuple[int, ...], seed: int) -> float:
    """Mean Hamming distance of the model's own picks after 50 warm-up steps."""
    loss = hamming(target)
    sampler = KDESampler(choices, np.random.default_rng(seed), random_fraction=0.0)
    picked = []
    for step in range(150):
        proposal = sampler.propose(always)
        if step >= 50 and sampler.last_model_budget is not None:
            picked.append(loss(proposal))
        sampler.observe(proposal, 1.0, float(loss(proposal)))
    return float(np.mean(picked))


def test_proposals_concentrate_on_the_good_region_with_three_options() -> None:
    target = (2, 0, 1, 1, 0, 2)
    uniform_mean = 6 * 2 / 3
    assert model_pick_losses((3,) * 6, target, seed=1) < uniform_mean / 2


def test_with_five_options_the_model_does_no_better_than_uniform_as_in_hpbandster() -> None:
    """The normal-reference bandwidth on codes 0-4 exceeds 1 (module notes)."""
    uniform_mean = 6 * 4 / 5
    assert model_pick_losses(NB201_LIKE, (1, 3, 0, 4, 2, 1), seed=1) > uniform_mean - 0.5
