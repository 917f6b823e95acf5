"""NB201's training augmentation, drawn from a passed-in generator.

Random crop after padding plus horizontal flip, applied per batch during training
(not when loading), so one seeded ``data_order``-style stream decides every crop and
flip and a re-run sees exactly the same augmented batches. torch is imported on first
use: loading a dataset (or listing them) should not pay torch's second-long import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def augment(
    batch: torch.Tensor,
    rng: np.random.Generator,
    padding: int,
    *,
    fill: float | Sequence[float] = 0.0,
) -> torch.Tensor:
    """Randomly crop each NCHW image after ``padding`` pixels of padding, flip half.

    Two ``rng`` calls per batch (crop offsets, then flips), so the result depends only on
    the batch and the generator's state. Batches are normalised, so pass
    ``fill=dataset.pad_fill`` to pad with the black NB201 pads the raw image with.
    """
    import torch

    if batch.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {tuple(batch.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, channels, height, width = batch.shape
    offsets = rng.integers(0, 2 * padding + 1, size=(n, 2))
    flips = rng.random(n) < 0.5

    values = torch.as_tensor(fill, dtype=batch.dtype, device=batch.device).reshape(-1)
    if values.numel() not in (1, channels):
        raise ValueError(f"fill needs 1 or {channels} values, got {values.numel()}")
    padded = (
        values.reshape(1, -1, 1, 1)
        .expand(n, channels, height + 2 * padding, width + 2 * padding)
        .clone()
    )
    padded[:, :, padding : padding + height, padding : padding + width] = batch

    cols = np.where(flips[:, None], np.arange(width)[::-1], np.arange(width))
    rows = torch.as_tensor(offsets[:, :1] + np.arange(height), device=batch.device)
    cols = torch.as_tensor(offsets[:, 1:] + cols, device=batch.device)
    samples = torch.arange(n, device=batch.device)[:, None, None]
    # indices split by a slice put their (n, h, w) dims first, the channel last
    cropped = padded[samples, :, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()
