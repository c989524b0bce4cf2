"""The losses of the training step: masked L1 and the adversarial loss (vanilla BCE or LSGAN).

Both take (B, C, H, W) tensors; masks are (B, 1, H, W) in {0, 1}. Nodata pixels are left
out of L1 entirely, so the model is never taught to reproduce fill values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| over valid pixels and all bands; ``mask`` is (B, 1, H, W) in {0, 1}."""
    weight = mask.expand_as(prediction)
    return (torch.abs(prediction - target) * weight).sum() / weight.sum().clamp_min(1.0)


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """vanilla: BCE on logits (autocast-safe); lsgan: MSE on logits, against 1 (real) or 0 (fake)."""
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)
