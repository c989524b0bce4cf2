"""What every chips dataset shares (:class:`EpochKeyedDataset`): samples keyed by a chip's index in its split
or by (epoch, index), each given one of the 8 dihedral views chosen from (seed, epoch, index).

:class:`~.sampling.EpochSampler` yields (epoch, index) keys, so a worker process kept alive across
epochs, a resumed run and every data-parallel rank augment a chip of an epoch the same way; a plain
index takes the epoch last given to :meth:`EpochKeyedDataset.set_epoch`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import VIEWS, dihedral


class EpochKeyedDataset(Dataset[dict[str, torch.Tensor]], ABC):
    """The chips ``names`` of one split as dicts of tensors, keyed by index or (epoch, index).

    A subclass reads chip ``index`` unaugmented (:meth:`read`); with ``augment`` every tensor of
    that sample ((C, H, W) images and their (1, H, W) masks alike) gets the same dihedral view,
    so images and masks stay aligned. ``index`` (a 0-d tensor) is added last, as it was read.
    """

    def __init__(self, names: tuple[str, ...], augment: bool, seed: int) -> None:
        self.names, self.augment, self.seed = names, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that plain-index samples augment for (``(epoch, index)`` keys carry their own)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """A sample by index, or by (epoch, index) as :class:`~.sampling.EpochSampler` yields them."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        sample = self.read(index)
        if self.augment:
            k = int(np.random.default_rng([self.seed, epoch, index]).integers(VIEWS))
            sample = {name: dihedral(value, k) for name, value in sample.items()}
        sample["index"] = torch.tensor(index)
        return sample

    @abstractmethod
    def read(self, index: int) -> dict[str, torch.Tensor]:
        """Chip ``index`` of the split as tensors, before any augmentation."""
