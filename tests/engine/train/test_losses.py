"""Adversarial losses over scales, hinge, and pix2pixHD's feature matching, on hand-computed values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pix2pix_qgis.model.discriminators import DiscriminatorSpec, build_discriminator
from pix2pix_qgis.train.losses import adversarial_loss, feature_matching_loss, gan_loss


def test_hinge_losses_are_lim_and_ye_s():
    logits = torch.tensor([-2.0, -0.5, 0.5, 2.0])
    assert gan_loss(logits, True, "hinge") == pytest.approx((3 + 1.5 + 0.5 + 0) / 4)
    assert gan_loss(logits, False, "hinge") == pytest.approx((0 + 0.5 + 1.5 + 3) / 4)
    assert gan_loss(logits, True, "hinge", for_discriminator=False) == pytest.approx(0.0)
    assert gan_loss(logits + 1, True, "hinge", for_discriminator=False) == pytest.approx(-1.0)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_vanilla_and_lsgan_are_their_own_generator_loss(mode):
    logits = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(gan_loss(logits, True, mode), gan_loss(logits, True, mode, for_discriminator=False))
    expected = F.mse_loss(logits, torch.zeros_like(logits)) if mode == "lsgan" else \
        F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    assert torch.equal(gan_loss(logits, False, mode), expected)


def test_the_adversarial_loss_averages_the_scales_logits_and_ignores_their_activations():
    fine, coarse = torch.full((1, 1, 6, 6), 2.0), torch.full((1, 1, 2, 2), -1.0)
    outputs = [[torch.full((1, 4, 8, 8), 99.0), fine], [torch.full((1, 4, 4, 4), 99.0), coarse]]
    expected = (F.mse_loss(fine, torch.ones_like(fine)) + F.mse_loss(coarse, torch.ones_like(coarse))) / 2
    assert adversarial_loss(outputs, True, "lsgan") == pytest.approx(float(expected))
    single = [[fine]]
    assert torch.equal(adversarial_loss(single, True, "vanilla"), gan_loss(fine, True, "vanilla"))


def test_feature_matching_is_pix2pixhds_weighted_l1_of_the_activations():
    d = build_discriminator(DiscriminatorSpec(6, ndf=4, scales=2), torch.Generator().manual_seed(0))
    real, fake = torch.rand(2, 6, 64, 64, requires_grad=True), torch.rand(2, 6, 64, 64, requires_grad=True)
    on_real, on_fake = d(real), d(fake)
    assert float(feature_matching_loss(on_real, on_real).detach()) == 0.0
    # pix2pixHD: Σ_scales Σ_layers (1 / num_D) · (4 / (n_layers + 1)) · L1, logits excluded.
    expected = sum(F.l1_loss(f, r) for scale_f, scale_r in zip(on_fake, on_real)
                   for f, r in zip(scale_f[:-1], scale_r[:-1])) * (1 / 2) * (4 / 4)
    loss = feature_matching_loss(on_fake, on_real)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    loss.backward()  # the fake side carries the gradient, the real side is a fixed target
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert real.grad is None
