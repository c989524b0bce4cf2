"""A re-creation of the reference pix2pix generator (junyanz ``models/networks.py``), for tests only.

Written from ``../shared/research/pix2pix.md`` §1.1–1.2 and Appendix A, deliberately
independent of ``pix2pix_qgis.model.networks``: norm layers come from ``functools.partial`` as in
the reference's ``get_norm_layer`` (batch: affine + running statistics; instance: neither;
none: a plain function returning Identity),
convolutions get a bias only when the norm's class is InstanceNorm2d (``use_bias =
norm_layer.func == nn.InstanceNorm2d``) except the outermost up-convolution, the innermost
level has no norm after its down-convolution, dropout sits at index 7 of the
``num_downs − 5`` 512-filter levels around the innermost one, and ``init_weights('normal',
0.02)`` initialises. Checkpoints are written as ``save_networks`` does:
``torch.save(net.cpu().state_dict(), '<epoch>_net_G.pth')``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def get_norm_layer(norm_type: str = "batch") -> Callable[[int], nn.Module]:
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":  # a plain function, so use_bias (InstanceNorm2d only) is False
        return lambda _channels: nn.Identity()
    raise NotImplementedError(norm_type)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer.func == nn.InstanceNorm2d if isinstance(norm_layer, functools.partial) \
            else norm_layer == nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model = model + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=None, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer)

    def forward(self, input):
        return self.model(input)


def init_weights(net: nn.Module, init_gain: float = 0.02) -> nn.Module:
    def init_func(m):
        classname = m.__class__.__name__
        if hasattr(m, "weight") and (classname.find("Conv") != -1 or classname.find("Linear") != -1):
            nn.init.normal_(m.weight.data, 0.0, init_gain)
            if hasattr(m, "bias") and m.bias is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif classname.find("BatchNorm2d") != -1:
            nn.init.normal_(m.weight.data, 1.0, init_gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init_func)
    return net


def define_G(input_nc: int = 3, output_nc: int = 3, ngf: int = 64, num_downs: int = 8, norm: str = "batch",
             use_dropout: bool = True, seed: int = 0) -> UnetGenerator:
    """The reference's ``define_G(..., netG='unet_256')`` (num_downs 8; 7 is unet_128), seeded."""
    torch.manual_seed(seed)
    return init_weights(UnetGenerator(input_nc, output_nc, num_downs, ngf, get_norm_layer(norm), use_dropout))


def as_if_trained(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN layers running statistics and affine values away from their init, as training would.

    Weights are scaled up so the untrained net's output varies with its input instead of
    sitting at tanh(0); running statistics differ from any one image's, so eval-mode and
    per-image normalisation give clearly different outputs.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.mul_(3.0)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.05, generator=generator)
            if isinstance(module, nn.BatchNorm2d):
                channels = module.num_features
                module.weight.copy_(1.0 + 0.2 * torch.randn(channels, generator=generator))
                module.bias.copy_(0.1 * torch.randn(channels, generator=generator))
                module.running_mean.copy_(0.05 * torch.randn(channels, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(channels, generator=generator))
                module.num_batches_tracked.fill_(1234)
    return net


def save_networks(net: nn.Module, folder: Path, epoch: str = "latest") -> Path:
    """As ``BaseModel.save_networks``: the unwrapped module's plain state_dict, ``<epoch>_net_G.pth``."""
    path = Path(folder) / f"{epoch}_net_G.pth"
    torch.save(net.cpu().state_dict(), path)
    return path
