"""Weight-sharing searches as strategies: the supernet's training is the one-off set-up.

Each of NB201's six weight-sharing methods (:mod:`harness.one_shot.methods`) runs in
:meth:`~WeightSharing.setup`, on the benchmark's weight-sharing set-up (the spec's
``[supernet]``, or the table's own protocol), seeded from the run's strategy stream. The
measured seconds of that search are the strategy's ``setup_cost_s``, so the simulated
clock charges them before the single evaluation that follows: the derived cell, looked up
in the table (or trained live) under the identical protocol, as NB201 reported it. The
per-epoch derived cells, the architecture parameters (or the controller's baseline and
reward) and the measured seconds go into the record (:meth:`~WeightSharing.search_log`).

The defaults are NB201's released hyperparameters (AutoDL-Projects
``configs/nas-benchmark/algos`` and ``scripts-search/NAS-Bench-201-algos``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import Field
from harness.errors import ConfigError
from harness.spaces.base import SearchSpace
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation

if TYPE_CHECKING:
    from harness.one_shot.setup import OneShotSetup


def _common(epochs: int, lr: float, lr_min: float, wd: float, batch: int) -> dict[str, Field]:
    return {
        "epochs": Field(int, epochs, low=1, high=100_000, help="supernet training epochs"),
        "learning_rate": Field(float, lr, low=0, low_open=True, high=10, help="weights' SGD rate"),
        "min_learning_rate": Field(float, lr_min, low=0, high=10, help="cosine schedule's floor"),
        "weight_decay": Field(float, wd, low=0, high=1, help="weights' weight decay"),
        "batch_size": Field(int, batch, low=1, high=1 << 20, help="training batch size"),
        "track_running_stats": Field(
            bool, True, help="edge ops' BatchNorms track running statistics (NB201's BN = 1)"
        ),
    }


_ARCH = {
    "arch_learning_rate": Field(float, 3e-4, low=0, low_open=True, high=10, help="Adam's rate"),
    "arch_weight_decay": Field(float, 1e-3, low=0, high=1, help="Adam's weight decay"),
}
_SELECT = {
    "select_num": Field(int, 100, low=1, high=15625, help="candidate cells scored at the end"),
    "test_batch_size": Field(int, 512, low=1, high=1 << 20, help="batch a candidate is scored on"),
}


class WeightSharing(Strategy):
    """Runs one weight-sharing search in ``setup``, then proposes the cell it derived."""

    #: the method of :data:`harness.one_shot.methods.METHODS` this strategy runs
    method: ClassVar[str]
    #: it trains a supernet: the benchmark must provide a weight-sharing set-up
    needs_one_shot: ClassVar[bool] = True

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        if params["min_learning_rate"] > params["learning_rate"]:
            raise ConfigError("must not exceed learning_rate", "min_learning_rate")

    @classmethod
    def check_setup(
        cls, params: Mapping[str, Any], space: SearchSpace, one_shot: OneShotSetup | None
    ) -> None:
        """Refuse, before any search runs, what this search cannot train on."""
        if not space.has_supernet:
            raise ConfigError(
                f"space {space.name!r} has no supernet, so {cls.__name__} cannot search it; "
                "weight sharing needs a space that builds one (nb201)"
            )
        if one_shot is None:
            raise ConfigError(
                f"{cls.__name__} trains a supernet but the benchmark gives it no data: add a "
                "[supernet] section naming the dataset and its two splits"
            )
        for name, split in (
            ("batch_size", one_shot.weights_split),
            ("test_batch_size", one_shot.arch_split),
        ):
            size = one_shot.split_size(split)
            if name in params and params[name] > size:
                raise ConfigError(
                    f"is {params[name]}, larger than split {split!r} ({size} examples)", name
                )

    def setup(self) -> None:
        from harness.one_shot.methods import METHODS

        one_shot = None if self.context is None else self.context.one_shot
        self.check_setup(self.params, self.space, one_shot)
        assert one_shot is not None
        search = METHODS[self.method](self.space, self.params, one_shot, self.rng)
        self.result = search.search()
        self.setup_cost_s = self.result.seconds
        self._proposed = False

    def ask(self) -> Proposal | None:
        """The derived cell, once; then nothing, so the run ends after its evaluation."""
        if self._proposed:
            return None
        self._proposed = True
        return Proposal(self.result.arch, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """A weight-sharing search has finished before its one evaluation."""

    def search_log(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "arch": self.result.arch,
            "seconds": self.result.seconds,
            "epochs": self.result.epochs,
            "state": self.result.state,
        }


class DartsV1(WeightSharing):
    """DARTS, first order (Liu et al., ICLR 2019), as NB201 ran it."""

    method = "darts-v1"
    hyperparameters = {**_common(50, 0.025, 0.001, 5e-4, 64), **_ARCH}


class DartsV2(WeightSharing):
    """DARTS, second order (Liu et al., ICLR 2019), as NB201 ran it."""

    method = "darts-v2"
    hyperparameters = {**_common(50, 0.025, 0.001, 5e-4, 64), **_ARCH}


class Gdas(WeightSharing):
    """GDAS (Dong & Yang, CVPR 2019): Gumbel-softmax sampling of one op per edge."""

    method = "gdas"
    hyperparameters = {
        **_common(250, 0.025, 0.001, 5e-4, 64),
        **_ARCH,
        "tau_max": Field(float, 10.0, low=0, low_open=True, high=1e6, help="first epoch's τ"),
        "tau_min": Field(float, 0.1, low=0, low_open=True, high=1e6, help="last epoch's τ"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        super().validate(params)
        if params["tau_min"] > params["tau_max"]:
            raise ConfigError(
                f"is {params['tau_min']:g} but tau_max is {params['tau_max']:g}: GDAS anneals τ "
                "downwards, from tau_max to tau_min",
                "tau_min",
            )


class Setn(WeightSharing):
    """SETN (Dong & Yang, ICCV 2019): uniform one-shot training, a learnt sampler."""

    method = "setn"
    hyperparameters = {**_common(250, 0.025, 0.001, 5e-4, 64), **_ARCH, **_SELECT}


class Rsps(WeightSharing):
    """Random search with parameter sharing (Li & Talwalkar, UAI 2019), NB201's RSPS."""

    method = "rsps"
    hyperparameters = {**_common(250, 0.025, 0.001, 5e-4, 64), **_SELECT}


class Enas(WeightSharing):
    """ENAS (Pham et al., ICML 2018): an LSTM controller trained by REINFORCE."""

    method = "enas"
    hyperparameters = {
        **_common(250, 0.05, 0.0005, 2.5e-4, 128),
        "t_max": Field(int, 10, low=1, high=100_000, help="cosine period's half, in epochs"),
        "controller_learning_rate": Field(
            float, 1e-3, low=0, low_open=True, high=10, help="the controller's Adam rate"
        ),
        "controller_entropy_weight": Field(
            float, 1e-4, low=0, high=10, help="weight of the entropy bonus in the reward"
        ),
        "controller_baseline_decay": Field(
            float, 0.99, low=0, high=1, help="decay of the reward's moving-average baseline"
        ),
        "controller_train_steps": Field(
            int, 50, low=1, high=1_000_000, help="controller updates per epoch"
        ),
        "controller_num_aggregate": Field(
            int, 20, low=1, high=1_000_000, help="sampled cells averaged into one update"
        ),
    }
