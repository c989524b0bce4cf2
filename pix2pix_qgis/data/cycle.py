"""Unpaired training samples: one chip of A and one chip of B per index, drawn as the reference does.

The reference's ``UnalignedDataset`` has max(|A|, |B|) items; item i is A's chip i mod |A|
and a random chip of B, so no pairing is learned from the order. :class:`CycleDataset` does
the same with B's draw seeded by (seed, epoch, index), like the augmentation, so an epoch is
the same whether it runs in one go, is resumed mid-way or is sharded over ranks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .unpaired import DomainDataset, UnpairedChips


class CycleDataset(Dataset[dict[str, torch.Tensor]]):
    """One split of an unpaired chips folder as (A, B) draws.

    A sample holds ``a`` (C_a, H, W) and ``b`` (C_b, H, W), normalised to [-1, 1] with invalid
    pixels 0, their validity masks ``mask_a`` and ``mask_b`` (1, H, W) in {0, 1}, and ``index``.
    """

    def __init__(self, chips: UnpairedChips, split: str, augment: bool = False, seed: int = 0) -> None:
        self.a = DomainDataset(chips.a, split, augment, seed)
        self.b = DomainDataset(chips.b, split, augment, seed)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that plain-index samples draw and augment for."""
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """A draw by index, or by (epoch, index) as ``sampling.EpochSampler`` yields them."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        b_index = int(np.random.default_rng([self.seed, epoch, index, 1]).integers(len(self.b)))
        a, b = self.a[(epoch, index % len(self.a))], self.b[(epoch, b_index)]
        return {"a": a["image"], "mask_a": a["mask"], "b": b["image"], "mask_b": b["mask"],
                "index": torch.tensor(index)}
