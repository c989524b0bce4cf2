"""The 8 symmetries of the square (the dihedral group), forward and inverse: the only copy.

Training augments with them and translation's test-time augmentation averages over them.
``dihedral(x, k)`` rotates ``k % 4`` quarter turns (counter-clockwise, ``torch.rot90``) and
then, for ``k >= 4``, flips left-right; ``inverse=True`` undoes exactly that view. Works on
torch tensors and numpy arrays, on the last two axes (H, W).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)
VIEWS = 8


def _rot90(x: ArrayOrTensor, turns: int) -> ArrayOrTensor:
    if isinstance(x, torch.Tensor):
        return torch.rot90(x, turns, dims=(-2, -1))
    return np.rot90(x, turns, axes=(-2, -1))


def _flip(x: ArrayOrTensor) -> ArrayOrTensor:
    if isinstance(x, torch.Tensor):
        return torch.flip(x, dims=(-1,))
    return np.flip(x, axis=-1)


def dihedral(x: ArrayOrTensor, k: int, inverse: bool = False) -> ArrayOrTensor:
    """View ``k`` (0–7) of ``x`` on its last two axes: ``k % 4`` quarter turns, then a left-right flip if k ≥ 4.

    ``inverse=True`` maps view ``k`` back: ``dihedral(dihedral(x, k), k, inverse=True)`` is ``x``.
    """
    if not 0 <= k < VIEWS:
        raise ValueError(f"view {k} must be 0 to {VIEWS - 1}")
    flip, turns = k >= 4, k % 4
    if inverse:
        return _rot90(_flip(x) if flip else x, -turns)
    out = _rot90(x, turns)
    return _flip(out) if flip else out
