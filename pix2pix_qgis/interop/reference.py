"""Import a generator trained with the reference PyTorch pix2pix (junyanz) as a ``.p2p`` package.

The reference saves ``<epoch>_net_G.pth``, the plain ``state_dict`` of its ``UnetGenerator``
(``../shared/research/pix2pix.md`` §1.5). Our U-Net has the same module layout and key
names (``networks.py``), so the tensors map one to one; the architecture (bands, NGF,
depth, norm: batch, instance or ``--norm none``) is read from the tensors themselves. The
reference's ResNet generators (``--netG resnet_*``) have no U-Net counterpart and are
refused with what was found. The file is opened with
``torch.load(weights_only=True)``: anything but tensors and plain containers is refused
before it can run code.

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
from pathlib import Path
from typing import Any

import torch

from ..contract.errors import Pix2PixError
from ..contract.tables import IMPORT_REFERENCE
from ..core.paths import check_input_file, check_run_paths
from ..core.progress import Progress
from ..data.normalization import Normalization
from ..model.card import BandsCard, ModelCard
from ..model.networks import GeneratorSpec, UnetGenerator, check_chip_size
from ..model.package import write_package

_NORM_NAMES = {"batch": "batch norm", "instance-affine": "batch norm", "instance": "instance norm",
               "none": "no norm (--norm none)"}
REFERENCE_SOURCE = "reference pix2pix: transforms.ToTensor() then Normalize(0.5, 0.5), i.e. x / 127.5 − 1"
_INNER_DOWNCONV = re.compile(r"^model\.model\.1\.model\.(?:3\.model\.)*1\.weight$")
_RESNET_BLOCK = re.compile(r"^model\.\d+\.conv_block\.1\.weight$")
_RESNET_LAYER = re.compile(r"^model\.\d+\.weight$")
_RUNNING = (".running_mean", ".running_var", ".num_batches_tracked")


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


def _resnet_refusal(state: dict[str, torch.Tensor], path: Path) -> Pix2PixError | None:
    """A specific answer for the reference's ResNet generator (``--netG resnet_9blocks`` / ``resnet_6blocks``).

    Its keys are flat (``model.1.weight``: the 7×7 input conv, ``model.N.conv_block.*``: the
    residual blocks; reference networks.py ResnetGenerator), not the U-Net's nested ``model.model.*``.
    """
    stem = state.get("model.1.weight")
    if stem is None or stem.ndim != 4 or tuple(stem.shape[-2:]) != (7, 7):
        return None
    blocks = len({key.split(".")[1] for key in state if _RESNET_BLOCK.match(key)})
    norm = "batch" if "model.2.running_mean" in state else "instance" if "model.1.bias" in state else "none"
    last_conv = max(int(key.split(".")[1]) for key in state if _RESNET_LAYER.match(key))
    return Pix2PixError(
        f"{path} holds a reference ResNet generator (--netG resnet_{blocks}blocks --norm {norm}, "
        f"{stem.shape[1]}→{state[f'model.{last_conv}.weight'].shape[0]} bands; the reference's CycleGAN generator). "
        "This engine's generator is the U-Net of pix2pix (--netG unet_256 / unet_128), so a ResNet's weights "
        "cannot be loaded into it. Retrain with the reference's pix2pix default --netG unet_256 and import that, "
        "or translate with the reference's own test.py."
    )


def infer_spec(state: dict[str, torch.Tensor], path: Path) -> GeneratorSpec:
    """Bands, NGF, depth and norm of the reference U-Net that ``state`` belongs to."""
    first, last = state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if first is None or last is None or first.ndim != 4 or last.ndim != 4:
        resnet = _resnet_refusal(state, path)
        if resnet is not None:
            raise resnet
        raise Pix2PixError(
            f"{path} is not a reference U-Net generator (it lacks model.model.0.weight / model.model.3.weight). "
            "Only --netG unet_256 / unet_128 (or other unet_N) generators can be imported."
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


def _adapt(state: dict[str, torch.Tensor], spec: GeneratorSpec, norm_stats: str) -> tuple[GeneratorSpec,
                                                                                            dict[str, torch.Tensor]]:
    if spec.norm == "instance" or norm_stats == "per-image":
        # Instance norm keeps no statistics (2018 checkpoints still carry some: the reference drops
        # them too); per-image BN uses the image's own statistics instead of the running ones.
        state = {k: v for k, v in state.items() if not k.endswith(_RUNNING)}
        if spec.norm == "batch":
            spec = GeneratorSpec(spec.in_channels, spec.out_channels, spec.depth, spec.ngf, "instance-affine",
                                 spec.dropout)
        return spec, state
    state = dict(state)
    for key in [k for k in state if k.endswith(".running_mean")]:  # PyTorch 0.3-era files lack the counter
        state.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0))
    return spec, state


def _card(spec: GeneratorSpec, chip_size: int, checkpoint: Path, digest: str, norm_stats: str) -> ModelCard:
    def side(bands: int) -> BandsCard:
        norm = Normalization((0.0,) * bands, (255.0,) * bands, "fixed-range", REFERENCE_SOURCE)
        return BandsCard(tuple(range(1, bands + 1)), "uint8", None, norm)

    note = ("BatchNorm uses its running statistics and dropout is off: the output equals the reference's "
            "test.py with --eval." if norm_stats == "running" else
            "Each BatchNorm uses the statistics of the tile it normalises (as the reference's test.py without "
            "--eval at batch size 1) and dropout is off, so runs repeat.")
    return ModelCard(
        generator=spec,
        chip_size=chip_size,
        input=side(spec.in_channels),
        output=side(spec.out_channels),
        inference={"mode": "eval", "norm_stats": norm_stats, "note": note},
        training={"source": "reference pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix)",
                  "checkpoint": checkpoint.name, "sha256": digest},
    )


def import_reference(
    checkpoint: str | Path,
    output: str | Path,
    chip_size: int | None = None,
    norm_stats: str = IMPORT_REFERENCE["NORM_STATS"].default,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``output`` (.p2p) from the reference generator checkpoint ``checkpoint``.

    ``chip_size`` defaults to the size the reference trains that depth on (256 for
    unet_256, 128 for unet_128): 2**depth.
    """
    progress = progress or Progress()
    checkpoint = Path(checkpoint)
    IMPORT_REFERENCE.check(chip_size=chip_size, norm_stats=norm_stats)
    check_run_paths(inputs={"reference checkpoint": checkpoint}, files={"model": output})
    state = load_state_dict(checkpoint)
    spec = infer_spec(state, checkpoint)
    spec, state = _adapt(state, spec, norm_stats)
    chip = chip_size or spec.multiple
    check_chip_size(chip, chip, spec.depth)
    with torch.device("meta"):
        generator = UnetGenerator(spec)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{checkpoint} does not match a reference U-Net of depth {spec.depth}, NGF {spec.ngf} "
                           f"({exc}).") from exc
    progress.info(
        f"Reference U-Net: {spec.in_channels}→{spec.out_channels} bands, depth {spec.depth}, NGF {spec.ngf}, "
        f"{_NORM_NAMES[spec.norm]} ({norm_stats} statistics at test time), "
        f"chips of {chip} px, 8-bit [0, 255] ↔ [-1, 1]."
    )
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    card = _card(spec, chip, checkpoint, digest, norm_stats)
    path = write_package(output, card, generator.state_dict())
    progress.update(1.0, "done")
    return {"output": str(path), "generator": spec.to_dict(), "chip_size": chip, "norm_stats": norm_stats,
            "tensors": len(state), "sha256": digest}
