"""Evaluators answer "train this architecture to this fidelity", found by ``kind``.

A spec's ``[search] evaluator`` (or ``harness run --evaluator``) names a built-in kind
(``tabular``: look it up in the table; ``live``: train it under the table's protocol), an
entry point in group ``harness.evaluators``, or a ``package.module:Class`` reference, as
for strategies; the record pins where the class came from.
"""

from __future__ import annotations

from harness.evaluators.base import Evaluator, EvaluatorSetup
from harness.plugins import load_class

#: built-in kind -> class reference (imported only when asked for: live imports torch)
BUILTIN_EVALUATORS = {
    "tabular": "harness.evaluators.tabular:TabularEvaluator",
    "live": "harness.evaluators.live:LiveEvaluator",
}
ENTRY_POINT_GROUP = "harness.evaluators"


def evaluator_class(kind: str) -> type[Evaluator]:
    """The class a spec's evaluator ``kind`` names; ConfigError lists the known kinds."""
    return load_class(kind, group=ENTRY_POINT_GROUP, builtins=BUILTIN_EVALUATORS, base=Evaluator)


__all__ = ["BUILTIN_EVALUATORS", "Evaluator", "EvaluatorSetup", "evaluator_class"]
