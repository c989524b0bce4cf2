"""Importing generators saved by the reference pix2pix (re-created in ``reference_pix2pix.py``)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch import nn

from pix2pix_qgis.contract.errors import Pix2PixError
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.interop.reference import import_reference
from pix2pix_qgis.model.package import load_model, read_package

from .. import reference_pix2pix as ref
from ..builders import REFERENCE_FILES, checkpoint_like, write_raster


def reference_output(net: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """The reference's test.py output: ``eval`` (with --eval) or ``train`` (its default) minus dropout."""
    net.eval() if mode == "eval" else net.train()
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.eval()  # dropout off: the only random part of the reference's default
    with torch.no_grad():
        return torch.cat([net(sample[None]) for sample in x])  # test.py runs batch_size 1


def saved(tmp_path: Path, **options) -> tuple[nn.Module, Path]:
    net = ref.as_if_trained(ref.define_G(**options))
    return net, ref.save_networks(net, tmp_path)


def test_the_re_creation_has_the_reference_layout_of_appendix_a():
    with torch.device("meta"):
        batch = ref.define_G(3, 3, 64, 8, "batch")
        instance = ref.define_G(3, 3, 64, 8, "instance")
    assert len(batch.state_dict()) == 82 and sum(p.numel() for p in batch.parameters()) == 54_413_955
    assert len(instance.state_dict()) == 32 and sum(p.numel() for p in instance.parameters()) == 54_409_603
    assert batch.state_dict()["model.model.3.weight"].shape == (128, 3, 4, 4)
    assert "model.model.0.bias" not in batch.state_dict()  # the bias rule: no bias with BN, even unnormalised


@pytest.mark.parametrize("options", [
    {"input_nc": 3, "output_nc": 3, "ngf": 8, "num_downs": 8, "norm": "batch"},  # unet_256, thin
    {"input_nc": 1, "output_nc": 3, "ngf": 4, "num_downs": 7, "norm": "batch"},  # unet_128, 1→3 bands
    {"input_nc": 3, "output_nc": 2, "ngf": 4, "num_downs": 8, "norm": "instance"},
])
def test_the_imported_model_gives_the_reference_output(tmp_path, options):
    net, pth = saved(tmp_path, **options)
    result = import_reference(pth, tmp_path / "model.p2p")
    generator, card = load_model(result["output"])
    size = 2 ** options["num_downs"]
    assert result["chip_size"] == card.chip_size == size
    spec = card.generator
    assert (spec.in_channels, spec.out_channels, spec.depth, spec.ngf, spec.norm) == (
        options["input_nc"], options["output_nc"], options["num_downs"], options["ngf"], options["norm"])
    x = torch.rand(2, options["input_nc"], size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected = reference_output(net, x, "eval")
    with torch.no_grad():
        ours = generator(x)
    assert expected.std() > 0.02  # a real signal, not tanh(0)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("spec, depth", [("unet256_norm_none", 8), ("unet128_norm_none", 7)])
def test_a_norm_none_generator_imports_and_runs_like_the_reference(tmp_path, spec, depth):
    """--norm none: Identity norm layers, no conv bias but the outermost up-conv's (17 / 15 tensors)."""
    pth = checkpoint_like(spec, tmp_path / spec / "latest_net_G.pth")
    result = import_reference(pth, tmp_path / "m.p2p")
    generator, card = load_model(result["output"])
    assert (card.generator.norm, card.generator.depth, card.generator.ngf) == ("none", depth, 8)
    ours = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in generator.state_dict().items()}
    assert ours == REFERENCE_FILES[spec]["keys"]
    net = ref.UnetGenerator(3, 3, depth, 8, ref.get_norm_layer("none"), use_dropout=True)
    net.load_state_dict(torch.load(pth, weights_only=True))
    x = torch.rand(1, 3, 2 ** depth, 2 ** depth, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(generator(x), reference_output(net, x, "eval"), rtol=0, atol=1e-5)


@pytest.mark.parametrize("spec, norm", [("unet256_batch", "batch"), ("unet256_instance", "instance")])
def test_the_reference_files_own_layouts_import(tmp_path, spec, norm):
    result = import_reference(checkpoint_like(spec, tmp_path / "latest_net_G.pth"), tmp_path / "m.p2p")
    assert result["generator"]["norm"] == norm and result["tensors"] == REFERENCE_FILES[spec]["tensors"]


@pytest.mark.parametrize("spec, blocks, norm, dropout", [
    ("resnet9_batch", 9, "batch", True),
    ("resnet9_instance", 9, "instance", False),  # the CycleGAN default
    ("resnet6_instance", 6, "instance", False),
    ("resnet9_norm_none", 9, "none", False),
])
def test_a_reference_resnet_generator_imports_with_the_reference_files_own_keys(tmp_path, spec, blocks, norm,
                                                                                 dropout):
    pth = checkpoint_like(spec, tmp_path / "latest_net_G_A.pth")
    result = import_reference(pth, tmp_path / "m.p2p")
    generator, card = load_model(result["output"])
    assert (card.generator.blocks, card.generator.norm, card.generator.dropout, card.generator.ngf) == (
        blocks, norm, dropout, 8)
    assert result["chip_size"] == card.chip_size == 256 and card.model_type == "pix2pix"
    ours = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in generator.state_dict().items()}
    assert ours == REFERENCE_FILES[spec]["keys"]  # every tensor of the real reference's file, nothing else
    stored = torch.load(pth, weights_only=True)
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(value, stored[key], rtol=0, atol=0)
    with torch.no_grad():
        out = generator(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64) and out.abs().max() <= 1


def test_a_reference_cyclegan_imports_both_directions_into_one_package(tmp_path):
    g_a = checkpoint_like("resnet9_instance", tmp_path / "a" / "latest_net_G_A.pth")
    g_b = checkpoint_like("resnet6_instance", tmp_path / "b" / "latest_net_G_B.pth")
    result = import_reference(g_a, tmp_path / "cycle.p2p", checkpoint_b=g_b, chip_size=64)
    assert result["model_type"] == "cyclegan" and result["sha256_b2a"] != result["sha256"]
    forward, card_a2b = load_model(result["output"])
    backward, card_b2a = load_model(result["output"], direction="b2a")
    assert (card_a2b.generator.blocks, card_b2a.generator.blocks) == (9, 6)
    assert card_b2a.input == card_a2b.output and card_b2a.chip_size == 64
    stored = torch.load(g_b, weights_only=True)
    for key, value in backward.state_dict().items():
        torch.testing.assert_close(value, stored[key], rtol=0, atol=0)
    one_way = import_reference(g_a, tmp_path / "one.p2p")["output"]
    with pytest.raises(Pix2PixError, match="Pix2Pix model: it holds one generator, A→B"):
        load_model(one_way, direction="b2a")


def test_a_cyclegan_pair_with_mismatched_bands_is_refused(tmp_path):
    g_a = checkpoint_like("resnet9_instance", tmp_path / "latest_net_G_A.pth")
    state = torch.load(g_a, weights_only=True)
    state["model.26.weight"] = state["model.26.weight"][:1]  # B→A writing 1 band where A has 3
    state["model.26.bias"] = state["model.26.bias"][:1]
    torch.save(state, tmp_path / "latest_net_G_B.pth")
    with pytest.raises(Pix2PixError, match="needs 3→3"):
        import_reference(g_a, tmp_path / "m.p2p", checkpoint_b=tmp_path / "latest_net_G_B.pth")
    assert not (tmp_path / "m.p2p").exists()


def test_per_image_statistics_reproduce_the_references_default_test_mode(tmp_path):
    net, pth = saved(tmp_path, input_nc=3, output_nc=3, ngf=8, num_downs=8, norm="batch")
    running = load_model(import_reference(pth, tmp_path / "running.p2p")["output"])[0]
    per_image, card = load_model(import_reference(pth, tmp_path / "image.p2p", norm_stats="per-image")["output"])
    assert card.generator.norm == "instance-affine"
    assert card.inference["norm_stats"] == "per-image"
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(2)) * 2 - 1
    train_mode = reference_output(net, x, "train")
    with torch.no_grad():
        torch.testing.assert_close(per_image(x), train_mode, rtol=0, atol=1e-4)
        assert (running(x) - train_mode).abs().max() > 0.1  # the two test modes really differ


def test_the_normalisation_is_the_references_fixed_8_bit_range(tmp_path):
    _, pth = saved(tmp_path, input_nc=3, output_nc=1, ngf=4, num_downs=6)
    card, _ = read_package(import_reference(pth, tmp_path / "m.p2p")["output"])
    for side, bands in ((card.input, 3), (card.output, 1)):
        norm = side.normalization
        assert norm.method == "fixed-range" and norm.low == (0.0,) * bands and norm.high == (255.0,) * bands
        assert "Normalize(0.5, 0.5)" in norm.source
        assert side.dtype == "uint8"
    assert card.training["checkpoint"] == "latest_net_G.pth" and len(card.training["sha256"]) == 64


def test_dataparallel_prefixes_and_missing_batch_counters_are_tolerated(tmp_path):
    net = ref.as_if_trained(ref.define_G(3, 3, 4, 6))
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old_net_G.pth")
    generator, _ = load_model(import_reference(tmp_path / "old_net_G.pth", tmp_path / "m.p2p")["output"])
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(generator(x), reference_output(net, x, "eval"), rtol=0, atol=1e-5)


def test_pickled_objects_are_refused_before_they_run(tmp_path):
    net = ref.define_G(3, 3, 4, 6)
    path = tmp_path / "with_options.pth"
    torch.save({"netG": net.state_dict(), "opt": argparse.Namespace(netG="unet_64")}, path)
    with pytest.raises(Pix2PixError, match=r"holds Python objects besides tensors.*torch\.save\(netG\.state_dict"):
        import_reference(path, tmp_path / "m.p2p")
    assert not (tmp_path / "m.p2p").exists()


@pytest.mark.parametrize("payload, message", [
    (lambda: torch.nn.Linear(2, 2).state_dict(), "not a reference generator .*neither a U-Net.*nor a ResNet"),
    (lambda: [torch.zeros(2)], "not a generator state_dict"),
])
def test_other_checkpoints_get_a_clear_error(tmp_path, payload, message):
    torch.save(payload(), tmp_path / "x.pth")
    with pytest.raises(Pix2PixError, match=message):
        import_reference(tmp_path / "x.pth", tmp_path / "m.p2p")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Pix2PixError, match="not a PyTorch checkpoint"):
        import_reference(tmp_path / "junk.pth", tmp_path / "m.p2p")


def test_an_imported_model_translates_a_raster_like_the_reference(tmp_path, rng):
    net, pth = saved(tmp_path, input_nc=3, output_nc=3, ngf=8, num_downs=8)
    model = import_reference(pth, tmp_path / "model.p2p")["output"]
    image = rng.integers(0, 256, (3, 256, 256), dtype=np.uint8)
    source = write_raster(tmp_path / "in.tif", image)
    result = translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(device="cpu"))
    with rasterio.open(source) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert (out.crs, out.transform, out.width, out.height, out.count, out.dtypes[0]) == (
            src.crs, src.transform, 256, 256, 3, "uint8")
        translated = out.read().astype(np.float64)
    # One tile covers the raster (weights flat at the border): the reference's tensor2im of its output,
    # (y + 1) / 2 · 255, rounded instead of truncated.
    x = torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)[None]
    expected = ((reference_output(net, x, "eval")[0].numpy().astype(np.float64) + 1) / 2 * 255)
    assert result["tiles"] == 1
    assert np.abs(translated - np.clip(np.rint(expected), 0, 255)).max() <= 1
    # The reference's tensor2im truncates ((y + 1) / 2 · 255 → astype(uint8), util/util.py:27-30); we round,
    # so we are half a level brighter on average and never more than one level apart.
    truncated = np.clip(expected, 0, 255).astype(np.uint8)
    difference = translated - truncated
    assert difference.min() >= 0 and difference.max() <= 1 and 0.4 < difference.mean() < 0.6


def test_the_cli_imports_and_reports_bad_files(tmp_path):
    _, pth = saved(tmp_path, input_nc=3, output_nc=3, ngf=4, num_downs=7)
    done = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "import-reference", str(pth),
                           str(tmp_path / "m.p2p"), "--progress", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert result["chip_size"] == 128 and result["generator"]["depth"] == 7
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 10)
    bad = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "import-reference", str(tmp_path / "bad.pth"),
                          str(tmp_path / "n.p2p"), "--progress", "json"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert json.loads(bad.stdout.strip().splitlines()[-1])["type"] == "error"
