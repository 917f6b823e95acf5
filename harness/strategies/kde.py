"""BOHB's model-based configuration sampler (Falkner, Klein & Hutter, ICML 2018).

A faithful numpy port of hpbandster's config generator
(github.com/automl/HpBandSter, ``hpbandster/optimizers/config_generators/bohb.py``, cited
below as ``bohb.py`` with line numbers of its last commit) for spaces whose decisions are
all categorical. BOHB is Hyperband whose new configurations come from :class:`KDESampler`.

What it reproduces, and where:

- **Losses are minimised** (hpbandster's ``loss``). Only their order matters, so ``1 -
  accuracy``, ``100 - accuracy`` (NAS-Bench-201's released worker) and ``-accuracy`` give
  the same proposals. A non-finite loss (NaN, +-inf) counts as ``+inf``: a bad
  configuration (bohb.py l.285-292).
- **Observations per budget.** An observation on a budget below the largest budget that
  already has a model is dropped, not even stored (l.300-302).
- **When a model exists.** With ``N`` observations on a budget and ``N >=
  min_points_in_model`` (default: decisions + 1, l.55-56), the ``n_good = max(min_points,
  top_n_percent * N // 100)`` lowest losses form the good set and the next ``n_bad =
  max(min_points, (100 - top_n_percent) * N // 100)`` the bad set (l.324-332); a model is
  fitted only if each set has more rows than there are decisions (l.334-337). Proposals
  use the largest budget with a model (l.135).
- **The densities** are statsmodels' ``KDEMultivariate(bw="normal_reference")`` with every
  variable unordered (``'u'``): a product of Aitchison-Aitken kernels, ``1 - h`` where a
  training point has the value and ``h / (L - 1)`` where it has not, averaged over the
  training points. ``h`` is Scott's rule ``1.06 * std * n ** (-1 / (4 + d))`` on the
  decision *codes* (so the order of a decision's options matters), clipped below at
  ``min_bandwidth`` (l.348-349) and never above (it may exceed 1, making ``1 - h``
  negative). ``L`` is the number of distinct values *in that KDE's training column*, not
  the number of options; where it is 1, ``h / 0`` is infinite, and so is the density of
  any point that differs there. :class:`CategoricalKDE` computes all of this in numpy,
  equal to statsmodels to rounding (tests/test_kde.py checks it).
- **A proposal** is uniformly random while no model exists, and with probability
  ``random_fraction`` afterwards (that draw is made only once a model exists, l.124).
  Otherwise ``num_samples`` candidates each copy a random good point, keeping each
  decision with probability ``1 - h`` and else drawing it uniformly over its options
  (l.145-165), and the candidate minimising ``max(1e-32, g(x)) / max(l(x), 1e-32)`` wins
  (l.140). With Python's ``max``, a NaN ``g`` becomes 1e-32 and a NaN ``l`` stays NaN.
  The first candidate whose ratio is not finite while ``l(x)`` is finite wins outright
  (l.168-180); if no ratio is finite the proposal is random (l.186-189).
- **bandwidth_factor** widens only *continuous* parameters' sampling bandwidth (l.153-154);
  hpbandster applies nothing of it to categorical ones. Every decision here is
  categorical, as every hyperparameter of NAS-Bench-201's released ConfigSpace was, so
  it has no effect; it is accepted and kept so a spec can state the published setting.
- **Invalid architectures.** hpbandster turns the winning vector into a Configuration;
  one that violates the space's forbidden clauses raises there, and its catch-all
  handler falls back to a random configuration, drawn by rejection from the valid ones
  (l.200-219). :meth:`KDESampler.propose` does the same with ``is_valid``: an invalid
  winner is replaced by a uniform random valid tuple, reported as not model-based.

A consequence worth knowing when reading BOHB's results: with five options (NAS-Bench-201's
ops, codes 0-4) the codes' spread makes ``h`` exceed 1 for typical good sets, so matching
a good point *lowers* l(x), and the sampler, whose keep probability ``1 - h`` is then
negative, redraws every such decision uniformly; the model no longer favours the good
region. On a Hamming-distance toy problem with 6 decisions of 5 options its
proposals are no better than uniform ones, while with 2 or 3 options they concentrate
(tests/test_kde.py). That is hpbandster's behaviour, reproduced, not a defect of the port.

Deviations: randomness comes from the ``rng`` given, not numpy's global state, and
candidates are drawn in one vectorised batch (the same distribution, a different
consumption of the stream); the good/bad split breaks ties in loss by observation order
(a stable sort), where hpbandster's ``np.argsort`` leaves their order to the sort
algorithm, which in numpy 2 may depend on the CPU's vector instructions; and a
``min_points_in_model`` below decisions + 1 is refused, where hpbandster logs a warning
and raises it (l.58-60).
Conditional (inactive) hyperparameters do not arise, so hpbandster's imputation of them
(l.238-265) has no counterpart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.errors import ConfigError

#: the constant of Scott's normal-reference rule, as statsmodels writes it
NORMAL_REFERENCE = 1.06
#: hpbandster's floor on both densities in the ratio g(x) / l(x) (bohb.py l.140)
DENSITY_FLOOR = 1e-32


def normal_reference_bandwidth(data: ArrayLike) -> NDArray[np.float64]:
    """statsmodels' ``normal_reference`` bandwidth of each column of ``data`` [n, d]."""
    data = np.asarray(data, dtype=np.float64)
    n, d = data.shape
    return NORMAL_REFERENCE * np.std(data, axis=0) * n ** (-1.0 / (4 + d))


class CategoricalKDE:
    """A product Aitchison-Aitken kernel density over unordered categorical columns.

    Equal to statsmodels' ``KDEMultivariate(data, 'u' * d, bw=bandwidth).pdf``,
    including its number of levels (distinct values of each training column) and the
    infinite or NaN densities that follow from a column with a single level. Column
    ``k`` holds option codes ``0..choices[k]-1``. Each (column, code) row of kernel
    values over the training points is tabulated once, so a density is ``d`` gathers
    and products instead of ``n * d`` comparisons.
    """

    def __init__(self, data: ArrayLike, bandwidth: ArrayLike, choices: tuple[int, ...]) -> None:
        data = np.array(data, dtype=np.int64)
        bandwidth = np.array(bandwidth, dtype=np.float64)
        high = np.array(choices, dtype=np.int64)
        if data.ndim != 2 or data.shape[0] <= data.shape[1] or high.shape != data.shape[1:]:
            raise ConfigError(
                f"needs a 2-D array with more rows than columns and {len(high)} columns, "
                f"got shape {data.shape}",
                "data",
            )
        if not ((data >= 0) & (data < high)).all():
            raise ConfigError(f"column k must hold codes 0..choices[k]-1 of {choices}", "data")
        if bandwidth.shape != high.shape:
            raise ConfigError(
                f"needs one bandwidth per column ({len(high)}), got shape {bandwidth.shape}",
                "bandwidth",
            )
        self._tabulate(data, bandwidth, high)

    @classmethod
    def _of_valid(
        cls, data: NDArray[np.int64], bandwidth: NDArray[np.float64], high: NDArray[np.int64]
    ) -> CategoricalKDE:
        """The density of ``data`` a sampler has already checked: no copies, no checks (a
        BOHB run fits two densities after almost every result)."""
        kde = cls.__new__(cls)
        kde._tabulate(data, bandwidth, high)
        return kde

    def _tabulate(
        self, data: NDArray[np.int64], bandwidth: NDArray[np.float64], high: NDArray[np.int64]
    ) -> None:
        data.flags.writeable = bandwidth.flags.writeable = False
        #: the training points [n, d], option codes
        self.data = data
        #: the kernel bandwidth of each column [d]
        self.bandwidth = bandwidth
        #: the probability that a sample keeps a training point's option, per column
        self.keep = 1 - bandwidth
        self._high = high
        width = int(high.max())
        present = np.arange(width)[None, :, None] == data.T[:, None, :]  # [d, width, n]
        levels = present.any(axis=2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            differ = bandwidth / (levels - 1)
        table = np.where(present, self.keep[:, None, None], differ[:, None, None])
        self._table = table.reshape(-1, len(data))
        self._offsets = np.arange(len(high)) * width

    def pdf(self, points: ArrayLike) -> NDArray[np.float64]:
        """The density at each row of ``points`` [m, d] (option codes); shape [m]."""
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != len(self._high):
            raise ConfigError(f"needs shape [m, {len(self._high)}], got {points.shape}", "points")
        if not ((points >= 0) & (points < self._high)).all():
            raise ConfigError(f"column k must hold codes 0..choices[k]-1 of {self._high}", "points")
        return self._density(points.astype(np.int64))

    def _density(self, points: NDArray[np.int64]) -> NDArray[np.float64]:
        """:meth:`pdf` of points known to be valid codes."""
        return self._density_at(points + self._offsets)

    def _density_at(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """The density at points given as rows of the kernel table (codes + offsets): one
        gather [m, d, n], then the product over columns, left to right as a loop would."""
        with np.errstate(invalid="ignore"):  # single-level columns: inf * 0, inf - inf
            product = np.multiply.reduce(self._table[rows], axis=1)
            return product.sum(axis=1) / self.data.shape[0]


class KDEModel(NamedTuple):
    """The two densities BOHB fits on one budget: l(x) on the good, g(x) on the bad."""

    good: CategoricalKDE
    bad: CategoricalKDE


class _Observations:
    """The configurations and losses seen on one budget, in arrival order."""

    def __init__(self, width: int) -> None:
        self.configs = np.empty((16, width), dtype=np.int64)
        self.losses = np.empty(16)
        self.count = 0

    def append(self, decisions: tuple[int, ...], loss: float) -> None:
        if self.count == len(self.losses):
            self.configs = np.concatenate([self.configs, np.empty_like(self.configs)])
            self.losses = np.concatenate([self.losses, np.empty_like(self.losses)])
        self.configs[self.count] = decisions
        self.losses[self.count] = loss
        self.count += 1


class KDESampler:
    """BOHB's configuration generator over categorical decisions (see the module notes).

    ``choices[k]`` is the number of options of decision ``k``. ``observe`` feeds it
    (decisions, budget, loss) with the loss to minimise; ``propose`` returns a tuple of
    decisions that ``is_valid`` accepts. All randomness comes from ``rng``.
    """

    def __init__(
        self,
        choices: tuple[int, ...],
        rng: np.random.Generator,
        *,
        top_n_percent: int = 15,
        num_samples: int = 64,
        random_fraction: float = 1 / 3,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 1e-3,
        min_points_in_model: int | None = None,
    ) -> None:
        choices = tuple(choices)
        if not choices or not all(_is_int(c) and c >= 1 for c in choices):
            raise ConfigError(
                f"must be a non-empty tuple of positive ints, got {choices}", "choices"
            )
        if not isinstance(rng, np.random.Generator):
            raise ConfigError("must be a numpy.random.Generator handed out by the run", "rng")
        _check_int(top_n_percent, "top_n_percent", 1, 99)
        _check_int(num_samples, "num_samples", 1, None)
        _check_real(random_fraction, "random_fraction", 0.0, 1.0)
        _check_real(bandwidth_factor, "bandwidth_factor", 0.0, None, low_open=True)
        _check_real(min_bandwidth, "min_bandwidth", 0.0, None)
        least = len(choices) + 1
        if min_points_in_model is None:
            min_points_in_model = least
        _check_int(min_points_in_model, "min_points_in_model", least, None)
        self.choices = tuple(int(c) for c in choices)
        self.top_n_percent = int(top_n_percent)
        self.num_samples = int(num_samples)
        self.random_fraction = float(random_fraction)
        #: inert for categorical decisions, as in hpbandster (module notes)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self.min_points_in_model = int(min_points_in_model)
        #: the budget whose model chose the last proposal; None if it was random
        self.last_model_budget: float | None = None
        self._rng = rng
        self._high = np.array(self.choices)
        self._observations: dict[float, _Observations] = {}
        self._models: dict[float, KDEModel] = {}

    @property
    def models(self) -> Mapping[float, KDEModel]:
        """The fitted model of each budget that has one (read-only)."""
        return MappingProxyType(self._models)

    def observe(self, decisions: tuple[int, ...], budget: float, loss: float) -> None:
        """Record one evaluation and refit that budget's model if it is due."""
        decisions = tuple(decisions)
        if len(decisions) != len(self.choices) or not all(
            (type(v) is int or _is_int(v)) and 0 <= v < c
            for v, c in zip(decisions, self.choices, strict=True)
        ):
            raise ConfigError(
                f"must hold one option per decision, each below {self.choices}, got {decisions}",
                "decisions",
            )
        if type(budget) is not float or not 0.0 < budget < math.inf:
            _check_real(budget, "budget", 0.0, None, low_open=True)
            budget = float(budget)
        loss = float(loss) if math.isfinite(loss) else math.inf
        if self._models and max(self._models) > budget:
            return
        seen = self._observations.setdefault(budget, _Observations(len(self.choices)))
        seen.append(decisions, loss)
        if seen.count < self.min_points_in_model:
            return
        n_good = max(self.min_points_in_model, self.top_n_percent * seen.count // 100)
        n_bad = max(self.min_points_in_model, (100 - self.top_n_percent) * seen.count // 100)
        order = np.argsort(seen.losses[: seen.count], kind="stable")
        good = seen.configs[order[:n_good]]
        bad = seen.configs[order[n_good : n_good + n_bad]]
        width = len(self.choices)
        if len(good) <= width or len(bad) <= width:
            return
        self._models[budget] = KDEModel(self._fit(good), self._fit(bad))

    def propose(self, is_valid: Callable[[tuple[int, ...]], bool]) -> tuple[int, ...]:
        """A configuration ``is_valid`` accepts: random, or the best of the model's samples."""
        self.last_model_budget = None
        if not self._models or self._rng.random() < self.random_fraction:
            return self._random(is_valid)
        budget = max(self._models)
        good, bad = self._models[budget]
        shape = (self.num_samples, len(self.choices))
        rows = self._rng.integers(len(good.data), size=self.num_samples)
        keep = self._rng.random(shape) < good.keep
        uniform = self._rng.integers(0, self._high, size=shape)
        candidates = np.where(keep, good.data[rows], uniform)
        at = candidates + good._offsets  # the two densities share their options' layout
        winner = _pick(good._density_at(at).tolist(), bad._density_at(at).tolist())
        if winner is None:
            return self._random(is_valid)
        proposal = tuple(candidates[winner].tolist())
        if not is_valid(proposal):
            return self._random(is_valid)
        self.last_model_budget = budget
        return proposal

    def _fit(self, data: NDArray[np.int64]) -> CategoricalKDE:
        # np.maximum is np.clip with no upper bound, without clip's argument handling
        bandwidth = np.maximum(normal_reference_bandwidth(data), self.min_bandwidth)
        return CategoricalKDE._of_valid(data, bandwidth, self._high)

    def _random(self, is_valid: Callable[[tuple[int, ...]], bool]) -> tuple[int, ...]:
        """Uniform over valid tuples, by rejection (ConfigSpace's sample_configuration)."""
        while True:
            proposal = tuple(int(v) for v in self._rng.integers(0, self._high))
            if is_valid(proposal):
                return proposal


def _pick(good: list[float], bad: list[float]) -> int | None:
    """Which candidate hpbandster's sequential loop (bohb.py l.145-189) returns, if any.

    Python floats, as hpbandster's loop has them: a handful of candidates cost less this
    way than in numpy's vector calls, and the arithmetic (IEEE double) is the same."""
    best, best_ratio = None, math.inf
    for index, (g, b) in enumerate(zip(good, bad, strict=True)):
        numerator = b if b > DENSITY_FLOOR else DENSITY_FLOOR  # a NaN b becomes the floor
        denominator = DENSITY_FLOOR if DENSITY_FLOOR > g else g  # a NaN g stays NaN
        ratio = numerator / denominator
        if not math.isfinite(ratio):
            if math.isfinite(g):
                return index  # the first non-finite ratio with a finite l(x) wins outright
        elif ratio < best_ratio:
            best, best_ratio = index, ratio
    return best


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(value: object, field: str, low: int, high: int | None) -> None:
    if not _is_int(value) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"must be an int {bound}, got {value!r}", field)


def _check_real(
    value: object, field: str, low: float, high: float | None, *, low_open: bool = False
) -> None:
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and np.isfinite(value)
        and (value > low if low_open else value >= low)
        and (high is None or value <= high)
    )
    if not ok:
        side = ">" if low_open else ">="
        bound = f"{side} {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"must be a finite number {bound}, got {value!r}", field)
