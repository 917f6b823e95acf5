"""Weight sharing as an estimator: a trained supernet scores cells with its shared weights.

For each init seed of the proxy protocol, :meth:`SupernetAccuracy.setup` runs one of
NB201's weight-sharing searches (:mod:`harness.one_shot.methods`, released settings unless
``method_params`` says otherwise) on the input's split, with the architecture side on
``score_split`` of the same dataset. A cell's score is then the accuracy, on the whole of
``score_split``, of the supernet run as that single cell (one op per edge, BatchNorm in
evaluation mode): how well the shared weights rank the cells NB201's searches choose from.

The search at init seed ``s`` draws from the ``strategy`` stream of master seed ``s``: its
supernet is the very one a weight-sharing run of the same method and hyperparameters with
master seed ``s`` trains. Its measured seconds are the one-off cost; a score's cost is its
own forward passes. Every worker process of
``harness estimate`` trains the same supernets again (bit-identical, same thread count),
so a supernet estimate runs best with one worker.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from harness.config import Field
from harness.errors import ConfigError
from harness.estimators.base import Estimator, Score
from harness.seeding import stream_generator

METHOD_KINDS = {
    "rsps": "rsps",
    "setn": "setn",
    "darts-v1": "darts_v1",
    "darts-v2": "darts_v2",
    "gdas": "gdas",
    "enas": "enas",
}


class SupernetAccuracy(Estimator):
    """Accuracy of a cell with a weight-sharing search's trained supernet weights."""

    needs_data: ClassVar[bool] = True
    settings: ClassVar[dict[str, Any]] = {
        "score": "top-1 accuracy (%) on all of score_split, edge BatchNorms in eval mode",
        "seed_stream": "strategy (a weight-sharing run's, at master seed = init seed)",
    }
    hyperparameters: ClassVar[Mapping[str, Field]] = {
        "method": Field(str, "rsps", choices=tuple(METHOD_KINDS), help="the search to run"),
        "method_params": Field(dict, {}, help="the search's hyperparameters (default: NB201's)"),
        "score_split": Field(
            str, "valid", help="split the architecture side trains on and cells are scored on"
        ),
        "score_batch_size": Field(int, 1024, low=1, high=1 << 20, help="evaluation batch"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        from harness.strategies import strategy_class

        strategy_class(METHOD_KINDS[params["method"]]).resolve_hyperparameters(
            params["method_params"]
        )

    def setup(self) -> None:
        from harness.one_shot.methods import METHODS
        from harness.one_shot.setup import OneShotSetup
        from harness.strategies import strategy_class

        if not self.space.has_supernet:
            raise ConfigError(f"space {self.space.name!r} has no supernet to train")
        dataset = self.data.dataset
        assert dataset is not None  # needs_data: the input has a dataset
        if self.score_split not in dataset.splits:
            raise ConfigError(
                f"dataset {dataset.name!r} has no split {self.score_split!r}", "score_split"
            )
        one_shot = OneShotSetup(
            dataset=dataset,
            weights_split=self.data.provenance["split"],
            arch_split=self.score_split,
            channels=self.protocol.channels,
            cells_per_stage=self.protocol.cells_per_stage,
            device=self.protocol.device,
            threads=self.protocol.threads,
        )
        kind = METHOD_KINDS[self.method]
        params = strategy_class(kind).resolve_hyperparameters(self.method_params)
        strategy_class(kind).check_setup(params, self.space, one_shot)  # type: ignore[attr-defined]
        x, y = dataset.splits[self.score_split]
        self._inputs = torch.from_numpy(x).to(self.protocol.device)
        self._labels = torch.from_numpy(y).to(self.protocol.device)
        self._networks: dict[int, torch.nn.Module] = {}
        self.searched: dict[int, dict[str, Any]] = {}
        for seed in self.protocol.seeds:
            rng = stream_generator(seed, "strategy")
            search = METHODS[self.method](self.space, params, one_shot, rng, log_cells=False)
            result = search.search()
            search.network.eval()
            self._networks[seed] = search.network
            self.setup_cost_s += result.seconds
            self.searched[seed] = {"arch": result.arch, "seconds": result.seconds}

    def score(self, arch: int, seed: int) -> Score:
        from harness.one_shot.methods import cell_accuracy

        ops = list(self.space.decisions_of_index(arch))
        tic = time.perf_counter()
        value = cell_accuracy(
            self._networks[seed], ops, self._inputs, self._labels, self.score_batch_size
        )
        return Score(value, time.perf_counter() - tic)
