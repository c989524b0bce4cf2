"""The Pix2Pix generator (a U-Net) and the building blocks the discriminators share.

Module layout, bias rule, initialisation and dropout placement follow the reference
(junyanz ``models/networks.py``, see ``../shared/research/pix2pix.md`` §1), so the default
generator (depth 8, ngf 64, batch norm, 3→3, transposed-convolution upsampling) has the
reference's ``unet_256`` state_dict keys and shapes and reference checkpoints load into it.

Two options go beyond the reference. ``upsample="resize"`` replaces each transposed
convolution by a bilinear ×2 resize and a 3×3 convolution (Odena et al. 2016,
"Deconvolution and checkerboard artifacts"): every output pixel is then made the same way,
so the generator cannot paint the 2-pixel checkerboard that a stride-2 transposed
convolution paints. Discriminators (``discriminators.py``) come in several scales with
spectral normalisation, as in pix2pixHD. This module knows nothing of rasters: tensors are
(B, C, H, W), normalised to [-1, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from ..contract.errors import Pix2PixError

NORMS = ("batch", "instance")  # what training offers, as the reference does
# "instance-affine" is BatchNorm evaluated with each image's own statistics (the reference's
# default at test time, batch size 1): InstanceNorm with the BN's learned scale and shift and
# the batch-norm bias rule. Only imported reference generators use it (``reference.py``).
# "none" is the reference's --norm none (Identity layers, no conv biases but the outermost up-conv's),
# also only for imported generators.
GENERATOR_NORMS = (*NORMS, "instance-affine", "none")
UPSAMPLES = ("transpose", "resize")  # the reference's ConvTranspose2d, or bilinear resize + 3×3 conv
MAX_DEPTH = 8  # the reference's unet_256; deeper levels add parameters, not context a chip has
MIN_DEPTH = 2  # an outermost and an innermost level


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """Factory of the reference's norm layers (BN keeps running stats; IN has neither affine nor stats)."""
    if kind == "batch":
        return lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "instance-affine":
        return lambda channels: nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "none":
        return lambda _channels: nn.Identity()
    raise Pix2PixError(f"Normalisation '{kind}' is unknown; use one of {', '.join(GENERATOR_NORMS)}.")


def upsampling_conv(kind: str, in_nc: int, out_nc: int, bias: bool) -> nn.Module:
    """(B, in_nc, H, W) → (B, out_nc, 2H, 2W): the reference's 4×4 stride-2 transposed conv, or
    a bilinear ×2 resize then a 3×3 conv with reflected borders (2.25× the multiply-adds)."""
    if kind == "transpose":
        return nn.ConvTranspose2d(in_nc, out_nc, kernel_size=4, stride=2, padding=1, bias=bias)
    if kind == "resize":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_nc, out_nc, kernel_size=3, padding=1, padding_mode="reflect", bias=bias),
        )
    raise Pix2PixError(f"Upsampling '{kind}' is unknown; use one of {', '.join(UPSAMPLES)}.")


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down-sample, the inner levels (``submodule``), up-sample, skip.

    ``outermost`` maps (B, input_nc, H, W) → (B, outer_nc, H, W) and ends in Tanh.
    ``innermost`` has no submodule and no norm after its down conv (a 1×1 map would
    normalise to zero). Every other level returns ``cat([x, up(inner(down(x)))])``, so its
    output has 2·outer_nc channels. Convs have a bias only with instance norm (the
    reference's rule), except the last up conv, which always has one.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        use_bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # In-place, as in the reference: the skip then carries LeakyReLU(x), which is what
        # reference weights were trained with.
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        layers: list[nn.Module]
        if innermost:
            upconv = upsampling_conv(upsample, inner_nc, outer_nc, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, make_norm(outer_nc)]
        elif submodule is None:
            raise ValueError("Only the innermost U-Net level has no submodule.")
        elif outermost:
            upconv = upsampling_conv(upsample, inner_nc * 2, outer_nc, bias=True)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        else:
            upconv = upsampling_conv(upsample, inner_nc * 2, outer_nc, bias=use_bias)
            layers = [downrelu, downconv, make_norm(inner_nc), submodule, uprelu, upconv, make_norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_nc, H, W) → (B, outer_nc, H, W) outermost, else (B, input_nc + outer_nc, H, W) with the skip."""
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything that defines the generator's weights; stored in the model package.

    The defaults are the reference's unet_256. A field a package does not record takes its
    default, which is how the packages written before that field existed were built.
    """

    in_channels: int = 3
    out_channels: int = 3
    depth: int = MAX_DEPTH
    ngf: int = 64
    norm: str = "batch"
    dropout: bool = True
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.out_channels < 1:
            raise Pix2PixError(
                f"The generator needs at least one input and one output band, not "
                f"{self.in_channels}→{self.out_channels}."
            )
        if not MIN_DEPTH <= self.depth <= 10:
            raise Pix2PixError(f"U-Net depth {self.depth} is out of range; use {MIN_DEPTH} to 10 (8 is the reference).")
        if self.ngf < 1:
            raise Pix2PixError(f"NGF {self.ngf} must be a positive number of filters (64 is the reference).")
        norm_layer(self.norm)
        if self.upsample not in UPSAMPLES:
            raise Pix2PixError(f"Upsampling '{self.upsample}' is unknown; use one of {', '.join(UPSAMPLES)}.")

    @property
    def multiple(self) -> int:
        """Chip sides must be a multiple of this (each level halves the size)."""
        return 2**self.depth

    @property
    def name(self) -> str:
        """The architecture in words, for logs and reports."""
        return f"U-Net of depth {self.depth}"

    def check_size(self, height: int, width: int) -> None:
        """Raise a clear error unless a (height, width) tile fits this U-Net (:func:`check_chip_size`)."""
        check_chip_size(height, width, self.depth)

    def to_dict(self) -> dict[str, Any]:
        """The architecture as ``model.json``'s ``generator`` entry."""
        return {"type": "unet", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorSpec:
        """Read ``model.json``'s ``generator`` entry; missing fields take the reference's defaults."""
        return cls(**{f.name: data[f.name] for f in dataclass_fields(cls) if f.name in data})


class UnetGenerator(nn.Module):
    """U-Net of ``spec.depth`` levels: (B, in_channels, H, W) → (B, out_channels, H, W) in (-1, 1).

    H and W must be multiples of 2**depth. Level k has ngf·min(2**k, 8) filters; the levels
    between the fifth and the innermost (the 512-filter ones at ngf 64) use dropout, so
    depth 8 with transposed convolutions is exactly the reference's unet_256 and depth 7 its
    unet_128.
    """

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        self.spec = spec
        width = [spec.ngf * min(2**level, 8) for level in range(spec.depth)]
        last = spec.depth - 1
        up = spec.upsample
        block = UnetSkipConnectionBlock(width[last - 1], width[last], innermost=True, norm=spec.norm, upsample=up)
        for level in range(last - 1, 0, -1):
            block = UnetSkipConnectionBlock(
                width[level - 1], width[level], submodule=block, norm=spec.norm,
                use_dropout=spec.dropout and level >= 4, upsample=up,
            )
        self.model = UnetSkipConnectionBlock(
            spec.out_channels, width[0], input_nc=spec.in_channels, submodule=block, outermost=True, norm=spec.norm,
            upsample=up,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] → (B, out_channels, H, W) in (-1, 1); H, W multiples of 2**depth."""
        check_chip_size(x.shape[-2], x.shape[-1], self.spec.depth)
        return self.model(x)


def check_chip_size(height: int, width: int, depth: int) -> None:
    """Raise a clear error unless a (height, width) chip fits a U-Net of ``depth`` levels."""
    multiple = 2**depth
    if height % multiple == 0 and width % multiple == 0 and min(height, width) >= multiple:
        return
    fits = deepest_fit(min(height, width)) if height == width else 0
    hint = f" or use depth {fits}" if fits else ""
    raise Pix2PixError(
        f"A {height}×{width} px chip does not fit a U-Net of depth {depth}: chip sides must be multiples of "
        f"2^{depth} = {multiple} px. Export chips of a multiple of {multiple} px (256 is typical){hint}."
    )


def deepest_fit(size: int, limit: int = MAX_DEPTH) -> int:
    """The largest depth ≤ ``limit`` whose 2**depth divides ``size`` (0 if even 2**2 does not)."""
    depth = 0
    while depth < limit and size % (2 ** (depth + 1)) == 0:
        depth += 1
    return depth if depth >= MIN_DEPTH else 0


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def init_weights(net: ModuleT, gain: float = 0.02, generator: torch.Generator | None = None) -> ModuleT:
    """The reference's ``normal`` init: conv weights N(0, gain), biases 0, BN weight N(1, gain)."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            with torch.no_grad():
                module.weight.normal_(0.0, gain, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.weight.normal_(1.0, gain, generator=generator)
                module.bias.zero_()
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of scalar weights in ``net`` (trainable or not)."""
    return sum(p.numel() for p in net.parameters())
