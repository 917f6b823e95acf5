"""Performance predictors, found by ``kind`` like strategies and estimators.

A kind is a built-in name, an entry point in group ``harness.predictors``, or a
``package.module:Class`` reference; the record pins where the class came from.
"""

from __future__ import annotations

from harness.plugins import load_class
from harness.predictors.base import Predictor, PredictorInputs

#: built-in kind -> class reference (imported only when asked for)
BUILTIN_PREDICTORS = {
    name: f"harness.predictors.models:{cls}"
    for name, cls in (
        ("gp", "GaussianProcess"),
        ("random_forest", "RandomForest"),
        ("lightgbm", "LightGBM"),
        ("mlp_ensemble", "MLPEnsemblePredictor"),
        ("proxy", "ProxyScore"),
        ("early_accuracy", "EarlyAccuracyRule"),
        ("sotl", "SotlRule"),
        ("sotle", "SotleRule"),
        ("lc_extrapolation", "LcExtrapolationRule"),
    )
}
ENTRY_POINT_GROUP = "harness.predictors"


def predictor_class(kind: str) -> type[Predictor]:
    """The class a spec's ``kind`` names; ConfigError lists the known kinds."""
    return load_class(kind, group=ENTRY_POINT_GROUP, builtins=BUILTIN_PREDICTORS, base=Predictor)


__all__ = ["BUILTIN_PREDICTORS", "Predictor", "PredictorInputs", "predictor_class"]
