"""Import a generator trained with the reference PyTorch pix2pix (junyanz) as a ``.p2p`` package.

The reference saves ``<epoch>_net_G.pth``, the plain ``state_dict`` of its ``UnetGenerator``
(``../shared/research/pix2pix.md`` §1.5), and for a CycleGAN ``<epoch>_net_G_A.pth`` (A→B)
and ``<epoch>_net_G_B.pth`` (B→A), its ``ResnetGenerator``s (``--netG resnet_9blocks`` by
default). Our U-Net and ResNet have the same module layouts and key names (``networks.py``,
``resnet.py``), so the tensors map one to one; the architecture (U-Net or ResNet, bands, NGF,
depth or blocks, norm: batch, instance or ``--norm none``, dropout) is read from the tensors
themselves. Given both CycleGAN generators, the package holds both directions (``--direction
b2a`` translates with G_B). The files are opened with ``torch.load(weights_only=True)``:
anything but tensors and plain containers is refused before it can run code.

Normalisation is the reference's: ``ToTensor()`` then ``Normalize(0.5, 0.5)``, i.e. 8-bit
values [0, 255] → [-1, 1] for the input, and the inverse for the output (written as uint8).
``translate`` rounds that output to the nearest level; the reference's ``tensor2im`` truncates
(``astype(np.uint8)``), so its PNGs are on average half a level darker, never more than one.

Test time. The reference runs its generator in *train* mode unless ``--eval`` is given
(§1.4): BatchNorm then uses each test image's own statistics and dropout stays on, so its
output is random and, with more than one image per batch, depends on the batch-mates. This
engine translates in eval mode. ``norm_stats="running"`` (default) keeps BatchNorm with its
running statistics: the output equals the reference's with ``--eval``. ``"per-image"``
turns each BatchNorm into an instance norm carrying the BN's scale and shift, which is
exactly train-mode BN at batch size 1: the reference's default output without the dropout
noise (per tile, so tiles are normalised separately; use it when ``--eval`` output is poor).
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..contract.errors import Pix2PixError
from ..contract.tables import IMPORT_REFERENCE
from ..core.paths import check_input_file, check_run_paths
from ..core.progress import Progress
from ..data.normalization import Normalization
from ..model.card import BandsCard, ModelCard
from ..model.generators import AnyGeneratorSpec, make_generator
from ..model.networks import GeneratorSpec
from ..model.package import write_package
from ..model.resnet import ResnetSpec

_NORM_NAMES = {"batch": "batch norm", "instance-affine": "batch norm", "instance": "instance norm",
               "none": "no norm (--norm none)"}
REFERENCE_SOURCE = "reference pix2pix: transforms.ToTensor() then Normalize(0.5, 0.5), i.e. x / 127.5 − 1"
_INNER_DOWNCONV = re.compile(r"^model\.model\.1\.model\.(?:3\.model\.)*1\.weight$")
_RESNET_BLOCK = re.compile(r"^model\.\d+\.conv_block\.1\.weight$")
_RESNET_LAYER = re.compile(r"^model\.\d+\.weight$")
_RUNNING = (".running_mean", ".running_var", ".num_batches_tracked")
RESNET_CHIP = 256  # the reference's --crop_size, what its CycleGANs are trained on


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a reference checkpoint, loaded without unpickling arbitrary objects."""
    check_input_file(path, "checkpoint", "Give the reference's latest_net_G.pth.")
    with path.open("rb") as handle:
        head = handle.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # torch.save's zip, or a legacy pickle
        raise Pix2PixError(f"{path} is not a PyTorch checkpoint. Give the reference's latest_net_G.pth.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f"a pickled {found.group(1)}" if found else "pickled code references"
        raise Pix2PixError(
            f"{path} holds Python objects besides tensors ({what}). It is refused: unpickling them could run "
            "code. Save only the generator's weights, as the reference's save_networks does: "
            "torch.save(netG.state_dict(), 'latest_net_G.pth')."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise Pix2PixError(f"{path} is not a PyTorch checkpoint ({exc}). Give the reference's latest_net_G.pth.") \
            from exc
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Pix2PixError(
            f"{path} is not a generator state_dict (a mapping of names to tensors) but a {type(state).__name__}. "
            "Give the file the reference writes for the generator, <epoch>_net_G.pth."
        )
    # Third-party DataParallel saves prefix every key with "module." (research notes §1.5).
    if all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def resnet_spec(state: dict[str, torch.Tensor], path: Path) -> ResnetSpec | None:
    """Bands, NGF, blocks, norm and dropout of the reference ResNet that ``state`` belongs to (None: not a ResNet).

    Its keys are flat (``model.1.weight``: the 7×7 input conv, ``model.N.conv_block.*``: the
    residual blocks; reference networks.py ResnetGenerator), not the U-Net's nested
    ``model.model.*``. Dropout (``--netG resnet_* `` without ``--no_dropout``) moves a block's
    second conv from ``conv_block.5`` to ``conv_block.6``.
    """
    stem = state.get("model.1.weight")
    if stem is None or stem.ndim != 4 or tuple(stem.shape[-2:]) != (7, 7):
        return None
    blocks = len({key.split(".")[1] for key in state if _RESNET_BLOCK.match(key)})
    norm = "batch" if "model.2.running_mean" in state else "instance" if "model.1.bias" in state else "none"
    last_conv = max(int(key.split(".")[1]) for key in state if _RESNET_LAYER.match(key))
    dropout = any(key.endswith("conv_block.6.weight") for key in state)
    try:
        return ResnetSpec(int(stem.shape[1]), int(state[f"model.{last_conv}.weight"].shape[0]), blocks,
                          int(stem.shape[0]), norm, dropout)
    except Pix2PixError as exc:
        raise Pix2PixError(f"{path} is not a reference ResNet generator this engine can build ({exc}).") from None


def infer_spec(state: dict[str, torch.Tensor], path: Path) -> AnyGeneratorSpec:
    """Bands, NGF, depth (U-Net) or blocks (ResNet) and norm of the reference generator ``state`` belongs to."""
    first, last = state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if first is None or last is None or first.ndim != 4 or last.ndim != 4:
        resnet = resnet_spec(state, path)
        if resnet is not None:
            return resnet
        raise Pix2PixError(
            f"{path} is not a reference generator (it has neither a U-Net's model.model.0.weight / "
            "model.model.3.weight nor a ResNet's 7×7 model.1.weight). Only --netG unet_N and resnet_Nblocks "
            "generators (<epoch>_net_G.pth, <epoch>_net_G_A.pth, <epoch>_net_G_B.pth) can be imported."
        )
    depth = 1 + sum(1 for key in state if _INNER_DOWNCONV.match(key))
    # BatchNorm leaves a 1-D weight after the second down conv. Instance norm (affine=False) leaves no
    # norm tensor but gives every conv a bias; --norm none leaves neither (reference networks.py:478-480:
    # use_bias only for InstanceNorm2d).
    norm_weight = state.get("model.model.1.model.2.weight")
    if norm_weight is not None and norm_weight.ndim == 1:
        norm = "batch"
    elif "model.model.0.bias" in state:
        norm = "instance"
    else:
        norm = "none"
    return GeneratorSpec(int(first.shape[1]), int(last.shape[1]), depth, int(first.shape[0]), norm, True)


def _adapt(state: dict[str, torch.Tensor], spec: AnyGeneratorSpec, norm_stats: str
           ) -> tuple[AnyGeneratorSpec, dict[str, torch.Tensor]]:
    if spec.norm == "instance" or norm_stats == "per-image":
        # Instance norm keeps no statistics (2018 checkpoints still carry some: the reference drops
        # them too); per-image BN uses the image's own statistics instead of the running ones.
        state = {k: v for k, v in state.items() if not k.endswith(_RUNNING)}
        if spec.norm == "batch":
            spec = replace(spec, norm="instance-affine")
        return spec, state
    state = dict(state)
    for key in [k for k in state if k.endswith(".running_mean")]:  # PyTorch 0.3-era files lack the counter
        state.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0))
    return spec, state


def _card(spec: AnyGeneratorSpec, chip_size: int, checkpoints: list[Path], digests: list[str], norm_stats: str,
          spec_b2a: AnyGeneratorSpec | None) -> ModelCard:
    def side(bands: int) -> BandsCard:
        norm = Normalization((0.0,) * bands, (255.0,) * bands, "fixed-range", REFERENCE_SOURCE)
        return BandsCard(tuple(range(1, bands + 1)), "uint8", None, norm)

    note = ("BatchNorm uses its running statistics and dropout is off: the output equals the reference's "
            "test.py with --eval." if norm_stats == "running" else
            "Each BatchNorm uses the statistics of the tile it normalises (as the reference's test.py without "
            "--eval at batch size 1) and dropout is off, so runs repeat.")
    if spec_b2a is None:
        training = {"source": "reference pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix)",
                    "checkpoint": checkpoints[0].name, "sha256": digests[0]}
    else:
        training = {"source": "reference CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix)",
                    "checkpoint": checkpoints[0].name, "sha256": digests[0],
                    "checkpoint_b2a": checkpoints[1].name, "sha256_b2a": digests[1]}
    return ModelCard(
        generator=spec,
        chip_size=chip_size,
        input=side(spec.in_channels),
        output=side(spec.out_channels),
        inference={"mode": "eval", "norm_stats": norm_stats, "note": note},
        training=training,
        model_type="pix2pix" if spec_b2a is None else "cyclegan",
        generator_b2a=spec_b2a,
    )


def _generator(checkpoint: Path, norm_stats: str) -> tuple[AnyGeneratorSpec, torch.nn.Module, str]:
    """The reference generator of ``checkpoint`` as our network (its spec, the network, the file's SHA-256)."""
    state = load_state_dict(checkpoint)
    spec, state = _adapt(state, infer_spec(state, checkpoint), norm_stats)
    with torch.device("meta"):
        generator = make_generator(spec)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{checkpoint} does not match a reference {spec.name}, NGF {spec.ngf} ({exc}).") from exc
    return spec, generator, hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def _describe(spec: AnyGeneratorSpec, norm_stats: str) -> str:
    return (f"{spec.in_channels}→{spec.out_channels} bands, {spec.name}, NGF {spec.ngf}, {_NORM_NAMES[spec.norm]}"
            f"{' with dropout' if spec.dropout and isinstance(spec, ResnetSpec) else ''} ({norm_stats} statistics at "
            "test time)")


def import_reference(
    checkpoint: str | Path,
    output: str | Path,
    chip_size: int | None = None,
    norm_stats: str = IMPORT_REFERENCE["NORM_STATS"].default,
    progress: Progress | None = None,
    checkpoint_b: str | Path | None = None,
) -> dict[str, Any]:
    """Write ``output`` (.p2p) from the reference generator checkpoint ``checkpoint``.

    With ``checkpoint_b`` (a CycleGAN's ``<epoch>_net_G_B.pth``; ``checkpoint`` is then its
    ``<epoch>_net_G_A.pth``) the package holds both directions. ``chip_size`` defaults to the
    size the reference trains on: 2**depth for a U-Net (256 for unet_256, 128 for unet_128),
    256 (its ``--crop_size``) for a ResNet.
    """
    progress = progress or Progress()
    checkpoints = [Path(checkpoint)] + ([Path(checkpoint_b)] if checkpoint_b is not None else [])
    IMPORT_REFERENCE.check(chip_size=chip_size, norm_stats=norm_stats, checkpoint_b=checkpoint_b)
    check_run_paths(inputs={"reference checkpoint": checkpoints[0],
                            **({"reference checkpoint B→A": checkpoints[1]} if checkpoint_b is not None else {})},
                    files={"model": output})
    spec, generator, digest = _generator(checkpoints[0], norm_stats)
    generators, digests = [generator], [digest]
    spec_b2a = None
    if checkpoint_b is not None:
        spec_b2a, generator_b2a, digest_b2a = _generator(checkpoints[1], norm_stats)
        if (spec_b2a.in_channels, spec_b2a.out_channels) != (spec.out_channels, spec.in_channels):
            raise Pix2PixError(
                f"{checkpoints[1]} maps {spec_b2a.in_channels}→{spec_b2a.out_channels} bands, but the B→A generator "
                f"of {checkpoints[0]} ({spec.in_channels}→{spec.out_channels}) needs {spec.out_channels}→"
                f"{spec.in_channels}. Give the G_A and G_B files of one CycleGAN (latest_net_G_A.pth, "
                "latest_net_G_B.pth)."
            )
        generators.append(generator_b2a)
        digests.append(digest_b2a)
    chip = chip_size or (RESNET_CHIP if isinstance(spec, ResnetSpec) else spec.multiple)
    for each in (spec,) if spec_b2a is None else (spec, spec_b2a):
        each.check_size(chip, chip)
    progress.info(f"Reference generator{'s' if spec_b2a else ''}: A→B {_describe(spec, norm_stats)}"
                  + (f"; B→A {_describe(spec_b2a, norm_stats)}" if spec_b2a else "")
                  + f"; chips of {chip} px, 8-bit [0, 255] ↔ [-1, 1].")
    card = _card(spec, chip, checkpoints, digests, norm_stats, spec_b2a)
    path = write_package(output, card, generators[0].state_dict(),
                         b2a_state=generators[1].state_dict() if spec_b2a else None)
    progress.update(1.0, "done")
    return {"output": str(path), "generator": spec.to_dict(), "chip_size": chip, "norm_stats": norm_stats,
            "tensors": len(generators[0].state_dict()), "sha256": digest,
            **({"model_type": "cyclegan", "generator_b2a": spec_b2a.to_dict(), "sha256_b2a": digests[1]}
               if spec_b2a else {})}
