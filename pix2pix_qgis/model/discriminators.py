"""Discriminators: the 70×70 PatchGAN of the reference, and pix2pixHD's stack of them at several scales.

A discriminator judges a pair: its input is (B, C_A + C_B, H, W), the condition A then the
image B, normalised to [-1, 1] (an unpaired model such as CycleGAN passes B alone). Every
discriminator here is a :class:`MultiscaleDiscriminator` whose ``forward`` returns, for each
scale, the list of its intermediate activations ending with the logits map: the adversarial
losses read the last entry of each scale, pix2pixHD's feature-matching loss the others
(``train.losses``). One scale without spectral normalisation is exactly the reference's
``NLayerDiscriminator`` (same modules, bias rule and init) under the prefix ``scales.0.``.

pix2pixHD (Wang et al. 2018, NVIDIA/pix2pixHD ``MultiscaleDiscriminator``): scale k judges
the pair average-pooled k times by 2 (3×3 window, stride 2), so with the same 70 px
receptive field the coarser scales see 140 and 280 px of context. Spectral normalisation
(Miyato et al. 2018) bounds each convolution's Lipschitz constant, which steadies the
discriminator; PyTorch's parametrisation keeps the raw weight under
``….parametrizations.weight.original`` and its power-iteration vectors as buffers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..contract.errors import Pix2PixError
from .networks import NORMS, init_weights, norm_layer

MAX_SCALES = 3  # pix2pixHD uses 2 or 3; at 256 px a fourth scale would judge 32 px with a 70 px field


class NLayerDiscriminator(nn.Module):
    """PatchGAN: (B, in_channels, H, W) → (B, 1, H/8 − 2, W/8 − 2) logits for n_layers 3.

    With n_layers 3 each logit sees a 70×70 px patch. The first and last convs always have
    a bias; the others only with instance norm (the reference's rule). No sigmoid: the
    losses take logits.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits map of the pair ``x`` (B, in_channels, H, W)."""
        return self.model(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activation after each LeakyReLU (n_layers + 1 of them), then the logits."""
        out = []
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return [*out, x]


def patchgan_output_size(size: int, n_layers: int = 3) -> int:
    """Side of the PatchGAN's logit map for a ``size`` px input (≤ 0: too small)."""
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 2


def downsampled_size(size: int, times: int) -> int:
    """Side after ``times`` of pix2pixHD's 3×3 stride-2 average pools (padding 1): ⌈size / 2⌉ each."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


@dataclass(frozen=True)
class DiscriminatorSpec:
    """Everything that defines a discriminator's weights; recorded in ``model.json`` and checkpoints.

    ``in_channels`` is the pair's band count (A's plus B's). The defaults (one scale, no
    spectral normalisation) are the reference's PatchGAN; a field a record lacks takes its
    default, which is how discriminators were built before that field existed.
    """

    in_channels: int
    ndf: int = 64
    n_layers: int = 3
    norm: str = "batch"
    scales: int = 1
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise Pix2PixError(f"The discriminator needs at least one band, not {self.in_channels}.")
        if self.ndf < 1:
            raise Pix2PixError(f"NDF {self.ndf} must be a positive number of filters (64 is the reference).")
        if not 1 <= self.n_layers <= 5:
            raise Pix2PixError(f"PatchGAN layers {self.n_layers} must be 1 to 5 (3 gives the 70×70 PatchGAN).")
        if not 1 <= self.scales <= MAX_SCALES:
            raise Pix2PixError(f"D_SCALES {self.scales} must be 1 to {MAX_SCALES} (pix2pixHD uses 2 or 3).")
        if self.norm not in NORMS:
            raise Pix2PixError(f"Normalisation '{self.norm}' is unknown; use {' or '.join(NORMS)}.")

    def logits_size(self, size: int) -> int:
        """Side of the coarsest scale's logit map for ``size`` px chips (≤ 0: the chips are too small)."""
        return patchgan_output_size(downsampled_size(size, self.scales - 1), self.n_layers)

    def check_chip_size(self, size: int) -> None:
        """Raise, naming a number of scales or a chip size that fits, unless ``size`` px chips can be judged."""
        if self.logits_size(size) >= 1:
            return
        fewer = next((s for s in range(self.scales - 1, 0, -1)
                      if DiscriminatorSpec(self.in_channels, scales=s, n_layers=self.n_layers).logits_size(size) >= 1),
                     None)
        hint = f"use D_SCALES {fewer} or " if fewer else ""
        raise Pix2PixError(
            f"Chips of {size} px are too small for the 70×70 PatchGAN discriminator at {self.scales} scale(s) "
            f"(the coarsest scale judges {downsampled_size(size, self.scales - 1)} px); {hint}export chips of at "
            f"least {32 * 2 ** (self.scales - 1)} px (256 is typical)."
        )

    def to_dict(self) -> dict[str, Any]:
        """The record in ``model.json`` and checkpoints."""
        return {"type": "patchgan", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorSpec:
        """The spec of a record; fields it lacks take their defaults (the reference's)."""
        names = ("in_channels", "ndf", "n_layers", "norm", "scales", "spectral_norm")
        return cls(**{name: data[name] for name in names if name in data})


class MultiscaleDiscriminator(nn.Module):
    """``spec.scales`` PatchGANs; ``forward`` gives per scale [activations…, logits].

    (B, in_channels, H, W) → a list (one entry per scale, finest first) of lists of tensors;
    the last tensor of each is that scale's (B, 1, h, w) logit map.
    """

    def __init__(self, spec: DiscriminatorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.scales = nn.ModuleList(
            NLayerDiscriminator(spec.in_channels, spec.ndf, spec.n_layers, spec.norm) for _ in range(spec.scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """For each scale (full resolution first), its activations and then its logits map."""
        outputs = []
        for index, scale in enumerate(cast("list[NLayerDiscriminator]", self.scales)):
            if index:
                x = self.downsample(x)
            outputs.append(scale.features(x))
        return outputs


def _apply_spectral_norm(net: nn.Module) -> None:
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d):
            spectral_norm(module)


def build_discriminator(spec: DiscriminatorSpec, generator: torch.Generator | None = None) -> MultiscaleDiscriminator:
    """A freshly initialised discriminator (the reference's init, then spectral normalisation if asked).

    With ``generator`` the global RNG is left as it was: the default inits and the power
    iteration's start vectors are drawn from a fork of it, seeded from ``generator``.
    """
    if generator is None:
        net = init_weights(MultiscaleDiscriminator(spec))
        if spec.spectral_norm:
            _apply_spectral_norm(net)
        return net
    with torch.random.fork_rng(devices=[]):
        net = MultiscaleDiscriminator(spec)
        init_weights(net, generator=generator)
        if spec.spectral_norm:
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            _apply_spectral_norm(net)
    return net


def legacy_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A discriminator state saved before multi-scale existed (keys ``model.…``) under today's keys.

    Checkpoints written by earlier versions held a bare ``NLayerDiscriminator``, which is
    scale 0 of today's one-scale discriminator; newer states pass through unchanged.
    """
    if any(key.startswith("scales.") for key in state):
        return state
    return {f"scales.0.{key}": value for key, value in state.items()}
