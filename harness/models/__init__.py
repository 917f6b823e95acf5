"""Networks for live training: the NAS-Bench-201 cell network and its size counts."""

from harness.models.nb201 import (
    NB201Network,
    analytic_parameter_count,
    build_nb201_network,
    count_flops,
    count_parameters,
)

__all__ = [
    "NB201Network",
    "analytic_parameter_count",
    "build_nb201_network",
    "count_flops",
    "count_parameters",
]
