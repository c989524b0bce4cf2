"""Samples of one split of a chips folder as normalised tensors with a validity mask (:class:`ChipDataset`),
and a sample back in raster units for figures (:class:`ChipView`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .epoch_keyed import EpochKeyedDataset
from .folder import SPLITS, ChipsFolder, read_pair


@dataclass(frozen=True)
class ChipView:
    """One chip pair in raster units, as the networks see it: what figures draw.

    ``input`` (C_a, H, W) is the normalised input mapped back to input units, so it is clipped
    to the normalisation's [low, high] like the generator's view of it; ``target`` (C_b, H, W)
    is in target units (0 where invalid); ``valid`` (H, W) is True where A and B are both valid;
    ``prediction`` (C_b, H, W, target units) is set once a generator has been applied.
    """

    name: str
    input: np.ndarray
    target: np.ndarray
    valid: np.ndarray
    prediction: np.ndarray | None = None


class ChipDataset(EpochKeyedDataset):
    """Samples of one split as dicts of tensors.

    ``a`` (C_a, H, W) and ``b`` (C_b, H, W) are normalised to [-1, 1] with invalid pixels set
    to 0 (mid-range), ``mask`` (1, H, W) is 1.0 where A and B are both valid, and with
    ``with_units`` ``b_units`` is the target in its own units (0 where invalid) for metrics.
    With ``augment`` each sample gets one of the 8 dihedral transforms, chosen from
    (seed, epoch, index) by :class:`~.epoch_keyed.EpochKeyedDataset` so that a resumed run,
    or a worker process, sees the same augmentation; nothing radiometric is ever applied, so
    the target's values stay what they were.
    """

    def __init__(self, chips: ChipsFolder, split: str, augment: bool = False, with_units: bool = False,
                 seed: int = 0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        super().__init__(chips.names(split), augment, seed)
        self.chips, self.with_units = chips, with_units

    def read(self, index: int) -> dict[str, torch.Tensor]:
        """Pair ``index`` normalised, invalid pixels 0, with its mask (and ``b_units``), unaugmented."""
        chips = self.chips
        a, b, valid = read_pair(chips.folder_a, chips.folder_b, self.names[index], chips.tile_size,
                                (chips.bands_a, chips.bands_b))
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
        return sample

    def view(self, sample: dict[str, torch.Tensor], prediction: np.ndarray | None = None) -> ChipView:
        """A sample of this dataset (read ``with_units``, not batched) in raster units, for figures."""
        return ChipView(self.names[int(sample["index"])], self.chips.norm_a.invert(sample["a"]).numpy(),
                        sample["b_units"].numpy(), sample["mask"][0].numpy() > 0.5, prediction)
