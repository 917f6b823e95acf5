"""Named random streams derived from one master seed.

Every random choice in a run draws from a stream derived here with
:class:`numpy.random.SeedSequence`, so a run is fully determined by its master seed and
each stream can be recorded and re-created on its own. The spawn key of a stream is
fixed by its name (not by the order streams are requested), so adding a stream never
shifts the others.
"""

from __future__ import annotations

import numpy as np

#: stream name -> spawn key; append new streams, never renumber
STREAM_KEYS: dict[str, int] = {
    "strategy": 0,
    "benchmark": 1,
    "data_order": 2,
    "weight_init": 3,
    "augmentation": 4,
    "report": 5,
    "proxy_batch": 6,
    "proxy_draws": 7,
    "predictor_sample": 8,
    "predictor_fit": 9,
}


def stream_seed(master_seed: int, stream: str, *key: int) -> np.random.SeedSequence:
    """The seed sequence of ``stream`` for a run with ``master_seed``; ``key`` extends the
    spawn key for a family of independent streams (the report's one per table cell)."""
    return np.random.SeedSequence(entropy=master_seed, spawn_key=(STREAM_KEYS[stream], *key))


def stream_generator(master_seed: int, stream: str, *key: int) -> np.random.Generator:
    """A PCG64 generator for ``stream``; the only way harness code obtains randomness."""
    return np.random.Generator(np.random.PCG64(stream_seed(master_seed, stream, *key)))


def describe_streams(master_seed: int, streams: tuple[str, ...]) -> dict[str, str]:
    """Recordable description of each stream: how to rebuild it exactly."""
    return {
        name: f"SeedSequence(entropy={master_seed}, spawn_key=({STREAM_KEYS[name]},))"
        for name in streams
    }


def stream_scheme(streams: tuple[str, ...]) -> str:
    """How every run's streams derive from its master seed, as one recordable line."""
    return "; ".join(
        f"{name}=SeedSequence(entropy=<master seed>, spawn_key=({STREAM_KEYS[name]},))"
        for name in streams
    )
