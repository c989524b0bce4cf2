"""The losses of a GAN training step: masked L1, the adversarial losses, and pix2pixHD's feature matching.

Images are (B, C, H, W) tensors; masks are (B, 1, H, W) in {0, 1}. Nodata pixels are left
out of L1 entirely, so the model is never taught to reproduce fill values. The adversarial
losses take what a ``model.discriminators.MultiscaleDiscriminator`` returns (per scale, a
list of activations ending with the logits), so any model with such a discriminator
(pix2pix here, an unpaired CycleGAN too) can use them as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")
FEATURE_LOSS = "G_feat"
# vanilla: the reference's BCE on logits; lsgan: least squares (Mao et al. 2017, pix2pixHD's
# default); hinge: Lim & Ye 2017 (SAGAN, SPADE), usually paired with spectral normalisation.
GAN_MODES = ("vanilla", "lsgan", "hinge")


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| over valid pixels and all bands; ``mask`` is (B, 1, H, W) in {0, 1}."""
    weight = mask.expand_as(prediction)
    return (torch.abs(prediction - target) * weight).sum() / weight.sum().clamp_min(1.0)


def gan_loss(logits: torch.Tensor, real: bool, mode: str, for_discriminator: bool = True) -> torch.Tensor:
    """One logits map's adversarial loss: the discriminator's (``real``: the map should say real) or the generator's.

    vanilla: BCE on logits (autocast-safe) against 1 (real) or 0 (fake); lsgan: MSE against
    the same targets. Both are their own generator loss with ``real=True``. hinge: the
    discriminator's is mean(relu(1 − x)) for real and mean(relu(1 + x)) for fake; the
    generator's is −mean(x) (``real`` must then be True).
    """
    logits = logits.float()
    if mode == "hinge":
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def adversarial_loss(outputs: list[list[torch.Tensor]], real: bool, mode: str,
                     for_discriminator: bool = True) -> torch.Tensor:
    """:func:`gan_loss` of each scale's logits (the last tensor of each), averaged over the scales."""
    losses = [gan_loss(scale[-1], real, mode, for_discriminator) for scale in outputs]
    return torch.stack(losses).mean()


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's feature-matching loss: L1 between the discriminator's activations on the fake and the real pair.

    Sums over each scale's activations (logits excluded), weighted 4 / their count, and
    averages over the scales: pix2pixHD's weighting, so its λ_feat = 10 means the same here.
    ``real`` should come without gradient (the target of the match).
    """
    total = []
    for fake_scale, real_scale in zip(fake, real):
        layers = list(zip(fake_scale[:-1], real_scale[:-1]))
        total.append(torch.stack([F.l1_loss(f.float(), r.detach().float()) for f, r in layers]).mean() * 4.0)
    return torch.stack(total).mean()
