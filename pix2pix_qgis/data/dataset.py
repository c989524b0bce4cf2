"""Samples of one split of a chips folder as normalised tensors with a validity mask (:class:`ChipDataset`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import dihedral
from .folder import SPLITS, ChipsFolder, read_pair


class ChipDataset(Dataset[dict[str, torch.Tensor]]):
    """Samples of one split as dicts of tensors.

    ``a`` (C_a, H, W) and ``b`` (C_b, H, W) are normalised to [-1, 1] with invalid pixels set
    to 0 (mid-range), ``mask`` (1, H, W) is 1.0 where A and B are both valid, and with
    ``with_units`` ``b_units`` is the target in its own units (0 where invalid) for metrics.
    With ``augment`` each sample gets one of the 8 dihedral transforms, chosen from
    (seed, epoch, index) so that a resumed run, or a worker process, sees the same
    augmentation; nothing radiometric is ever applied, so the target's values stay what
    they were.
    """

    def __init__(self, chips: ChipsFolder, split: str, augment: bool = False, with_units: bool = False,
                 seed: int = 0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        self.chips, self.names = chips, chips.names(split)
        self.augment, self.with_units, self.seed = augment, with_units, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that plain-index samples augment for (``(epoch, index)`` keys carry their own)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """A sample by index, or by (epoch, index) as :class:`EpochSampler` yields them."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        chips = self.chips
        a, b, valid = read_pair(chips.folder_a, chips.folder_b, self.names[index], chips.tile_size)
        invalid = ~valid
        a_norm = chips.norm_a.apply(np.nan_to_num(a))
        b_norm = chips.norm_b.apply(np.nan_to_num(b))
        a_norm[:, invalid] = 0.0
        b_norm[:, invalid] = 0.0
        sample = {"a": torch.from_numpy(a_norm), "b": torch.from_numpy(b_norm),
                  "mask": torch.from_numpy(valid[None].astype(np.float32))}
        if self.with_units:
            b[:, invalid] = 0.0
            sample["b_units"] = torch.from_numpy(b)
        if self.augment:
            k = int(np.random.default_rng([self.seed, epoch, index]).integers(8))
            sample = {name: dihedral(value, k) for name, value in sample.items()}
        sample["index"] = torch.tensor(index)
        return sample
