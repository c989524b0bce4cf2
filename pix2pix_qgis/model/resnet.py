"""The CycleGAN reference's ResNet generator (junyanz ``models/networks.py``, ``ResnetGenerator``).

Layout, key names, bias rule and padding are the reference's, so its ``resnet_9blocks`` /
``resnet_6blocks`` checkpoints (``latest_net_G_A.pth``) load into :class:`ResnetGenerator`
as they are: a 7×7 convolution on a 3-pixel reflection padding, two stride-2 downsamplings,
``blocks`` residual blocks (two 3×3 convolutions on 1-pixel reflection paddings), two ×2
upsamplings and a 7×7 convolution ending in Tanh. The convolutions carry a bias only with
instance norm (the reference's ``use_bias``), except the last, which always has one.

``upsample="resize"`` replaces each transposed convolution by a bilinear ×2 resize and a 3×3
convolution, as the U-Net's option does (``networks.upsampling_conv``), against the
checkerboard a stride-2 transposed convolution paints; the reference's layout is
``"transpose"``. Like ``networks.py`` this module knows nothing of rasters: tensors are
(B, C, H, W) in [-1, 1], H and W multiples of 4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import torch
from torch import nn

from ..contract.errors import Pix2PixError
from .networks import GENERATOR_NORMS, UPSAMPLES, norm_layer

RESNET_MULTIPLE = 4  # two stride-2 downsamplings
RESNET_MIN_SIZE = 8  # the innermost 2×2 map still takes the blocks' 1-pixel reflection padding


@dataclass(frozen=True)
class ResnetSpec:
    """Everything that defines a ResNet generator's weights; stored in the model package.

    The defaults are the CycleGAN reference's ``resnet_9blocks`` with ``--norm instance`` and
    its ``--no_dropout`` (cycle_gan_model.py sets it by default).
    """

    in_channels: int = 3
    out_channels: int = 3
    blocks: int = 9
    ngf: int = 64
    norm: str = "instance"
    dropout: bool = False
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.out_channels < 1:
            raise Pix2PixError(f"The generator needs at least one input and one output band, not "
                               f"{self.in_channels}→{self.out_channels}.")
        if not 1 <= self.blocks <= 64:
            raise Pix2PixError(f"ResNet blocks {self.blocks} is out of range; use 1 to 64 (9 is the reference).")
        if self.ngf < 1:
            raise Pix2PixError(f"NGF {self.ngf} must be a positive number of filters (64 is the reference).")
        if self.norm not in GENERATOR_NORMS:
            raise Pix2PixError(f"Normalisation '{self.norm}' is unknown; use one of {', '.join(GENERATOR_NORMS)}.")
        if self.upsample not in UPSAMPLES:
            raise Pix2PixError(f"Upsampling '{self.upsample}' is unknown; use one of {', '.join(UPSAMPLES)}.")

    @property
    def multiple(self) -> int:
        """Chip sides must be a multiple of this (two halvings)."""
        return RESNET_MULTIPLE

    @property
    def name(self) -> str:
        """The architecture in words, for logs and reports."""
        return f"ResNet of {self.blocks} blocks"

    def check_size(self, height: int, width: int) -> None:
        """Raise a clear error unless a (height, width) tile goes through this generator unchanged in size."""
        if height % RESNET_MULTIPLE == 0 and width % RESNET_MULTIPLE == 0 and min(height, width) >= RESNET_MIN_SIZE:
            return
        raise Pix2PixError(
            f"A {height}×{width} px tile does not fit a ResNet generator: sides must be multiples of "
            f"{RESNET_MULTIPLE} px and at least {RESNET_MIN_SIZE} px. Use such a tile or chip size (256 is typical)."
        )

    def to_dict(self) -> dict[str, Any]:
        """The architecture as ``model.json``'s generator entry."""
        return {"type": "resnet", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResnetSpec:
        """Read a ``model.json`` generator entry of type resnet; missing fields take the reference's defaults."""
        return cls(**{f.name: data[f.name] for f in dataclass_fields(cls) if f.name in data})


class ResnetBlock(nn.Module):
    """x + conv_block(x): two 3×3 convolutions on reflection paddings, norm, ReLU between (dropout optional)."""

    def __init__(self, dim: int, norm: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=bias),
                                   make_norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim, H, W) → (B, dim, H, W)."""
        return x + self.conv_block(x)


def _upsampling(kind: str, in_nc: int, out_nc: int, bias: bool) -> nn.Module:
    """(B, in_nc, H, W) → (B, out_nc, 2H, 2W): the reference's 3×3 transposed conv, or resize + 3×3 conv."""
    if kind == "transpose":
        return nn.ConvTranspose2d(in_nc, out_nc, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(in_nc, out_nc, kernel_size=3, padding=1, padding_mode="reflect", bias=bias))


class ResnetGenerator(nn.Module):
    """(B, in_channels, H, W) → (B, out_channels, H, W) in (-1, 1); H and W multiples of 4, at least 8.

    ``self.model`` is one ``nn.Sequential`` whose indices are the reference's, so its state_dict
    keys are too (``model.1.weight`` the first conv, ``model.10.conv_block.1.weight`` the first block, …).
    """

    def __init__(self, spec: ResnetSpec) -> None:
        super().__init__()
        self.spec = spec
        make_norm = norm_layer(spec.norm)
        bias = spec.norm == "instance"  # the reference's use_bias: only for InstanceNorm2d
        ngf = spec.ngf
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(spec.in_channels, ngf, kernel_size=7, bias=bias),
                                   make_norm(ngf), nn.ReLU(True)]
        for level in range(2):
            mult = 2**level
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                       make_norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, spec.norm, spec.dropout, bias) for _ in range(spec.blocks)]
        for level in range(2):
            mult = 2 ** (2 - level)
            layers += [_upsampling(spec.upsample, ngf * mult, ngf * mult // 2, bias), make_norm(ngf * mult // 2),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, spec.out_channels, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] → (B, out_channels, H, W) in (-1, 1)."""
        self.spec.check_size(x.shape[-2], x.shape[-1])
        return self.model(x)
