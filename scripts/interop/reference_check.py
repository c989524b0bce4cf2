"""Check ``import-reference`` against the real reference pix2pix code (not a re-creation of it).

    REFERENCE_SRC=path/to/pytorch-CycleGAN-and-pix2pix .venv/bin/python scripts/interop/reference_check.py OUT

For each generator option below, the reference's own ``models/networks.py`` (``define_G`` +
``init_net``) builds the network and its ``BaseModel.save_networks('latest')`` writes
``OUT/<spec>/latest_net_G.pth``, as ``train.py`` would. Then:

- Every generator, U-Net or ResNet: the engine imports the file; its generator and the
  reference network (both in eval mode, same random input) must agree, and the reference's
  ``util.util.tensor2im`` (which truncates to uint8) is compared with the engine's rounding
  (``translate``'s ``np.rint``).
- A CycleGAN pair: ``resnet9_instance`` as G_A and ``resnet6_instance`` as G_B imported into one
  package (``--checkpoint-b``); its B→A generator must agree with the second reference network.

Prints one JSON object (also ``OUT/reference_check.json``). Run with the engine's venv (it has
torch); ``REFERENCE_SRC`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix, which is not
part of this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

REFERENCE_SRC = Path(os.environ.get("REFERENCE_SRC", "pytorch-CycleGAN-and-pix2pix")).resolve()
sys.path.insert(0, str(REFERENCE_SRC))

from models import networks  # noqa: E402  (the reference's own code)
from models.base_model import BaseModel  # noqa: E402
from util.util import tensor2im  # noqa: E402

from pix2pix_qgis.contract.errors import Pix2PixError  # noqa: E402
from pix2pix_qgis.interop.reference import import_reference  # noqa: E402
from pix2pix_qgis.model.package import load_model  # noqa: E402

RESNET_SIZE = 64  # any multiple of 4 goes through a ResNet; small keeps the check fast
# name: (netG, norm, use_dropout); pix2pix's default is unet_256 with batch norm and dropout.
SPECS = {
    "unet256_batch": ("unet_256", "batch", True),
    "unet256_instance": ("unet_256", "instance", True),
    "unet256_norm_none": ("unet_256", "none", True),
    "unet128_norm_none": ("unet_128", "none", True),
    "resnet9_batch": ("resnet_9blocks", "batch", True),
    "resnet9_instance": ("resnet_9blocks", "instance", False),
    "resnet6_instance": ("resnet_6blocks", "instance", False),
    "resnet9_norm_none": ("resnet_9blocks", "none", False),
}


class Saver(BaseModel):
    """The smallest concrete BaseModel: only what ``save_networks`` needs."""

    def set_input(self, input):  # noqa: A002 - the reference's signature
        """Unused: nothing is trained."""

    def forward(self):
        """Unused: nothing is trained."""

    def optimize_parameters(self):
        """Unused: nothing is trained."""


def reference_file(out: Path, name: str, netg: str, norm: str, dropout: bool, ngf: int) -> tuple[Path, torch.nn.Module]:
    """``OUT/name/latest_net_G.pth`` written by the reference, and the network it holds."""
    torch.manual_seed(0)
    opt = SimpleNamespace(isTrain=True, checkpoints_dir=str(out), name=name, device=torch.device("cpu"),
                          preprocess="resize_and_crop")
    saver = Saver(opt)
    saver.model_names = ["G"]
    saver.netG = networks.init_net(networks.define_G(3, 3, ngf, netg, norm, dropout), "normal", 0.02)
    Path(saver.save_dir).mkdir(parents=True, exist_ok=True)
    saver.save_networks("latest")
    return Path(saver.save_dir) / "latest_net_G.pth", saver.netG


def check_import(path: Path, net: torch.nn.Module, size: int, out: Path) -> dict:
    result = import_reference(path, out / f"{path.parent.name}.p2p")
    generator, card = load_model(result["output"])
    return {"imported": True, "norm": card.generator.norm, "generator": card.generator.name,
            "tensors": result["tensors"], **compare(generator, net, size)}


def compare(generator: torch.nn.Module, net: torch.nn.Module, size: int) -> dict:
    """Our generator against the reference network on the same random input, both in eval mode."""
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    net.eval()
    with torch.no_grad():
        theirs, ours = net(x), generator(x)
    truncated = np.stack([tensor2im(theirs[i:i + 1]) for i in range(len(x))]).astype(np.int64)
    rounded = np.rint((ours.numpy().transpose(0, 2, 3, 1) + 1) / 2 * 255).clip(0, 255).astype(np.int64)
    return {"max_abs_diff_eval": float((theirs - ours).abs().max()),
            "rounded_minus_tensor2im_mean": float((rounded - truncated).mean()),
            "rounded_minus_tensor2im_max": int(np.abs(rounded - truncated).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--ngf", type=int, default=8, help="64 is the reference default; the layout is the same")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"reference_src": str(REFERENCE_SRC), "torch": torch.__version__, "ngf": args.ngf, "specs": {}}
    networks_by_name = {}
    for name, (netg, norm, dropout) in SPECS.items():
        path, net = reference_file(args.out, name, netg, norm, dropout, args.ngf)
        networks_by_name[name] = (path, net)
        size = int(netg.split("_")[1]) if netg.startswith("unet") else RESNET_SIZE
        try:
            report["specs"][name] = check_import(path, net, size, args.out)
        except Pix2PixError as exc:
            report["specs"][name] = {"imported": False, "message": str(exc)}
    (g_a, _), (g_b, net_b) = networks_by_name["resnet9_instance"], networks_by_name["resnet6_instance"]
    pair = import_reference(g_a, args.out / "cyclegan.p2p", checkpoint_b=g_b)
    report["cyclegan_b2a"] = compare(load_model(pair["output"], direction="b2a")[0], net_b, RESNET_SIZE)
    text = json.dumps(report, indent=1)
    (args.out / "reference_check.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
