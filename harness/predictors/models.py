"""Model-based predictors, and the proxies and learning-curve rules they are judged beside.

Each model regresses the target on an architecture's features: its encoding (``auto``:
the path encoding where the space offers one, as BANANAS reads it; ``onehot``; ``path``),
followed by any zero-cost proxy scores named in ``proxies`` (each standardised by the
training set's mean and standard deviation), which is how NASLib feeds zero-cost proxies
to its model-based predictors. Every random draw a model makes comes from the generator
the protocol passes to ``fit`` (a seed derived from it for the libraries that take one),
and the libraries run single-threaded, so every fit is reproducible.

- ``gp``: scikit-learn's Gaussian process with a constant × RBF kernel plus white noise,
  targets normalised, kernel hyperparameters fitted by maximum likelihood.
- ``random_forest``: scikit-learn's random forest regressor.
- ``lightgbm``: LightGBM's gradient-boosted trees. LightGBM rather than XGBoost: NASLib
  ships both and they rank alike, LightGBM's wheel is a few MB (XGBoost's 130 MB), and it
  has a ``deterministic`` mode; ``min_child_samples`` defaults to 2 (LightGBM's 20 would
  let a training set of 5–20 architectures grow no tree at all).
- ``mlp_ensemble``: BANANAS's ensemble of ReLU MLPs (:mod:`harness.strategies.mlp_ensemble`,
  naszilla's ``standard`` parameters), fitted to the target and averaged over members.
- ``proxy``: one zero-cost proxy's score itself (no training set).
- ``early_accuracy``, ``sotl``, ``sotle``, ``lc_extrapolation``: the learning-curve rules of
  :mod:`harness.estimators.learning_curves` (no training set).

scikit-learn and LightGBM are the optional extra ``predictors``; a predictor whose
library is missing ends in one line naming it.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.config import Field
from harness.errors import ConfigError
from harness.estimators.learning_curves import check_epoch, rule_cost, rule_scores
from harness.predictors.base import Predictor
from harness.strategies.mlp_ensemble import MLPEnsemble

ENCODINGS = ("auto", "onehot", "path")


def _library(module: str) -> Any:
    """Import ``module`` of the optional extra, or a one-line error naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"needs {module.split('.')[0]}, which is not installed; install harness's "
            "'predictors' extra: pip install -e '.[predictors]' -c constraints.txt"
        ) from None


def _library_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


class FeatureModel(Predictor):
    """A regressor on an architecture's encoding and any proxy scores."""

    hyperparameters = {
        "encoding": Field(str, "auto", choices=ENCODINGS, help="the architecture's encoding"),
        "proxies": Field(list, [], items=str, help="[[feature]] names appended as features"),
    }
    encoding: str
    proxies: list[str]

    def check(self) -> None:
        self.encoding_used = self.inputs.encoding_kind(self.encoding)
        for name in self.proxies:
            self.inputs.proxy(name, np.zeros(0, dtype=np.int64))

    def required(self) -> NDArray[np.bool_] | None:
        if not self.proxies:
            return None
        return np.all([np.isfinite(self.inputs.proxies[p][0]) for p in self.proxies], axis=0)

    def query_cost_s(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        cost = np.zeros(len(archs))
        for name in self.proxies:
            cost += self.inputs.proxies[name][1][archs]
        return cost

    def features(self, archs: NDArray[np.int64], fitting: bool = False) -> NDArray[np.float64]:
        """The encoding, then each proxy standardised by the training set's statistics."""
        columns = [self.inputs.encode(archs, self.encoding_used)]
        if self.proxies:
            scores = np.column_stack([self.inputs.proxy(p, archs) for p in self.proxies])
            if fitting:
                self._centre = scores.mean(axis=0)
                spread = scores.std(axis=0)
                self._scale = np.where(spread > 0, spread, 1.0)
            columns.append((scores - self._centre) / self._scale)
        return np.hstack(columns)

    def fit(
        self, archs: NDArray[np.int64], targets: NDArray[np.float64], rng: np.random.Generator
    ) -> None:
        self.model = self.regressor(rng)
        with warnings.catch_warnings():  # a kernel bound reached is the fit's answer, not news
            warnings.simplefilter("ignore", category=UserWarning)
            self.model.fit(self.features(archs, fitting=True), targets)

    def predict(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.asarray(self.model.predict(self.features(archs)), dtype=np.float64)

    def regressor(self, rng: np.random.Generator) -> Any:
        """An unfitted model with ``fit(x, y)`` and ``predict(x)``."""
        raise NotImplementedError


class GaussianProcess(FeatureModel):
    """scikit-learn's Gaussian process regressor (constant × RBF + white noise)."""

    hyperparameters = {
        **FeatureModel.hyperparameters,
        "restarts": Field(int, 0, low=0, help="optimiser restarts of the kernel's fit"),
    }
    restarts: int

    def regressor(self, rng: np.random.Generator) -> Any:
        gp = _library("sklearn.gaussian_process")
        kernels = _library("sklearn.gaussian_process.kernels")
        kernel = kernels.ConstantKernel() * kernels.RBF() + kernels.WhiteKernel()
        return gp.GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            n_restarts_optimizer=self.restarts,
            random_state=_library_seed(rng),
        )


class RandomForest(FeatureModel):
    """scikit-learn's random forest regressor."""

    hyperparameters = {
        **FeatureModel.hyperparameters,
        "trees": Field(int, 100, low=1, help="number of trees"),
        "min_samples_leaf": Field(int, 1, low=1, help="fewest training cells in a leaf"),
    }
    trees: int
    min_samples_leaf: int

    def regressor(self, rng: np.random.Generator) -> Any:
        ensemble = _library("sklearn.ensemble")
        return ensemble.RandomForestRegressor(
            n_estimators=self.trees,
            min_samples_leaf=self.min_samples_leaf,
            random_state=_library_seed(rng),
            n_jobs=1,
        )


class LightGBM(FeatureModel):
    """LightGBM's gradient-boosted regression trees, deterministic and single-threaded."""

    hyperparameters = {
        **FeatureModel.hyperparameters,
        "rounds": Field(int, 100, low=1, help="boosting rounds"),
        "num_leaves": Field(int, 31, low=2, help="leaves per tree"),
        "learning_rate": Field(float, 0.05, low=0, low_open=True, help="shrinkage per round"),
        "min_child_samples": Field(int, 2, low=1, help="fewest training cells in a leaf"),
    }
    rounds: int
    num_leaves: int
    learning_rate: float
    min_child_samples: int

    def regressor(self, rng: np.random.Generator) -> Any:
        lightgbm = _library("lightgbm")
        return lightgbm.LGBMRegressor(
            n_estimators=self.rounds,
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples,
            min_data_in_bin=1,
            random_state=_library_seed(rng),
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,
            verbosity=-1,
        )


class MLPEnsemblePredictor(FeatureModel):
    """BANANAS's MLP ensemble (naszilla's ``standard`` parameters), member mean."""

    hyperparameters = {
        **FeatureModel.hyperparameters,
        "members": Field(int, 5, low=1, help="networks in the ensemble"),
        "num_layers": Field(int, 10, low=1, help="hidden layers per network"),
        "layer_width": Field(int, 20, low=1, help="units per hidden layer"),
        "epochs": Field(int, 150, low=1, help="training epochs per network"),
        "batch_size": Field(int, 32, low=1, help="training cells per step"),
        "learning_rate": Field(float, 0.01, low=0, low_open=True, help="Adam's step size"),
    }
    members: int
    num_layers: int
    layer_width: int
    epochs: int
    batch_size: int
    learning_rate: float

    def fit(
        self, archs: NDArray[np.int64], targets: NDArray[np.float64], rng: np.random.Generator
    ) -> None:
        x = self.features(archs, fitting=True)
        self.ensemble = MLPEnsemble(
            self.members, x.shape[1], self.num_layers, self.layer_width, rng
        )
        self.ensemble.fit(
            x,
            np.asarray(targets, dtype=np.float64),
            rng,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
        )

    def predict(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.ensemble.predict(self.features(archs)).mean(axis=0)


class ProxyScore(Predictor):
    """One zero-cost proxy's score as the prediction (no training set)."""

    needs_training = False
    hyperparameters = {"feature": Field(str, help="the [[feature]] whose score predicts")}
    feature: str

    def check(self) -> None:
        self.inputs.proxy(self.feature, np.zeros(0, dtype=np.int64))

    def required(self) -> NDArray[np.bool_] | None:
        return np.isfinite(self.inputs.proxies[self.feature][0])

    def query_cost_s(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.inputs.proxies[self.feature][1][archs]

    def predict(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.inputs.proxy(self.feature, archs)


class LearningCurveRule(Predictor):
    """A learning-curve rule read from the table's curves (no training set)."""

    needs_training = False
    hyperparameters = {"epoch": Field(int, low=1, help="the last epoch the rule reads")}
    epoch: int
    rule = ""

    def check(self) -> None:
        curves = self.inputs.curves
        if curves is None:
            raise ConfigError(
                f"learning-curve rule {self.rule!r} needs the table's per-epoch curves; "
                "the spec's [table] names no 'curves' schedule",
                "kind",
            )
        check_epoch(curves, self.rule, self.epoch)
        self._scores = rule_scores(curves, self.rule, self.epoch)
        self._cost = rule_cost(curves, self.epoch)

    def required(self) -> NDArray[np.bool_] | None:
        return np.isfinite(self._scores) & np.isfinite(self._cost)

    def query_cost_s(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return self._cost[archs]

    def predict(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        return self._scores[archs]


class EarlyAccuracyRule(LearningCurveRule):
    """The validation accuracy after ``epoch`` epochs."""

    rule = "early_accuracy"


class SotlRule(LearningCurveRule):
    """Minus the sum of the training losses of epochs 1..``epoch`` (SoTL)."""

    rule = "sotl"


class SotleRule(LearningCurveRule):
    """Minus the training loss of epoch ``epoch`` (SoTL-E)."""

    rule = "sotle"


class LcExtrapolationRule(LearningCurveRule):
    """``a + b ln(epoch)`` fitted to the validation accuracies, at the final epoch."""

    rule = "lc_extrapolation"
