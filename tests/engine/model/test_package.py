"""The .p2p package and the checkpoint: contents, exact round trip, and refusal of anything unsafe."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.manifest import load_manifest
from pix2pix_qgis.model.card import MODEL_VERSION
from pix2pix_qgis.model.checkpoint import (
    checkpoint_path,
    flatten_optimizer,
    load_checkpoint,
    save_checkpoint,
    unflatten_optimizer,
)
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import MODEL_ENTRIES, load_model, predict, read_package, write_package
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("package")
    chips = mapping_chips(folder, size=128, b_nodata_block=True)
    config = TrainConfig(epochs=2, ngf=4, ndf=4, lr=2e-3, seed=0)
    result = train(chips, folder / "model.p2p", config)
    return Path(result["output"]), chips


class Payload:
    """Unpickling this opens ``path`` for writing, which creates it: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def rewrite(source: Path, target: Path, replace: dict[str, bytes] | None = None, names: list[str] | None = None
            ) -> Path:
    """Copy a package's entries into a new zip, replacing some payloads and/or renaming entries."""
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries.update(replace or {})
    with zipfile.ZipFile(target, "w") as archive:
        for index, (name, data) in enumerate(entries.items()):
            archive.writestr(names[index] if names else name, data)
    return target


def test_the_package_holds_exactly_its_five_entries(trained):
    model, _ = trained
    with zipfile.ZipFile(model) as archive:
        assert sorted(archive.namelist()) == sorted(MODEL_ENTRIES)
        preview = Image.open(io.BytesIO(archive.read("preview.png")))
        losses = Image.open(io.BytesIO(archive.read("losses.png")))
        csv_lines = archive.read("metrics.csv").decode().splitlines()
    assert preview.format == losses.format == "PNG"
    # core.plots.predictions_figure at 100 dpi: 4 validation chips in rows (2.4 in each + 0.6), and
    # input | target | epoch 1 | epoch 2 across (3.0 in each): after 2 epochs one is the kept one, the other
    # the first or the last.
    assert preview.size == (1200, 1020)
    assert losses.size == (700, 600)  # core.plots.losses_figure at 100 dpi
    assert csv_lines[0].startswith("epoch,lr,G_GAN,G_L1,D_real,D_fake") and "val_psnr" in csv_lines[0]
    assert len(csv_lines) == 3


def test_model_json_records_what_translation_needs(trained):
    model, chips = trained
    manifest = load_manifest(chips)
    metadata = json.loads(zipfile.ZipFile(model).read("model.json"))  # the file itself: the on-disk contract
    tensors = read_package(model)[1]
    assert metadata["format"] == "pix2pix-model" and metadata["format_version"] == 1
    assert metadata["chip_size"] == 32
    defaults = TrainConfig()
    assert metadata["architecture"]["generator"] == {"type": "unet", "in_channels": 3, "out_channels": 3,
                                                     "depth": 5, "ngf": 4, "norm": "batch", "dropout": True,
                                                     "upsample": defaults.upsample}
    assert metadata["architecture"]["discriminator"] == {
        "type": "patchgan", "in_channels": 6, "ndf": 4, "n_layers": 3, "norm": "batch", "scales": defaults.d_scales,
        "spectral_norm": defaults.spectral_norm}
    for role, key in (("a", "input"), ("b", "output")):
        assert metadata[key]["bands"] == manifest[role]["bands"] and metadata[key]["dtype"] == manifest[role]["dtype"]
        assert metadata[key]["nodata"] == manifest[role]["nodata"]
        assert metadata[key]["normalization"]["low"] == [s["p01"] for s in manifest[role]["statistics"]]
        assert metadata[key]["normalization"]["high"] == [s["p99"] for s in manifest[role]["statistics"]]
    assert metadata["grid"]["crs"] == manifest["grid"]["crs"] == "EPSG:32633"
    assert metadata["grid"]["cell_size"] == manifest["grid"]["cell_size"]
    assert metadata["training"]["config"]["epochs"] == 2 and metadata["training"]["chips"]["train"] > 0
    history = metadata["metrics"]["history"]
    assert [row["epoch"] for row in history] == [1, 2] and metadata["metrics"]["best_epoch"] in (1, 2)
    assert {"torch", "numpy", "rasterio", "safetensors", "pix2pix_qgis"} <= set(metadata["software"])
    assert set(tensors) == set(build_generator(GeneratorSpec(3, 3, 5, 4, upsample=defaults.upsample)).state_dict())


def test_a_round_trip_gives_identical_outputs(trained, tmp_path):
    model, _ = trained
    card, _ = read_package(model)
    spec = card.generator  # the trained architecture (the default upsampling)
    original = build_generator(spec, torch.Generator().manual_seed(7))
    with torch.no_grad():  # give BatchNorm running statistics that differ from their defaults
        for _ in range(3):
            original(torch.rand(4, 3, 32, 32) * 2 - 1)
    original.eval()
    path = write_package(tmp_path / "copy.p2p", card, original.state_dict(), b"png", b"png")
    loaded, loaded_card = load_model(path)
    assert not loaded.training and loaded_card.chip_size == card.chip_size
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))
    norm = card.output.normalization
    assert torch.equal(predict(loaded, x, norm), norm.invert(original(x).detach()))


def test_predict_returns_the_target_units_within_the_training_range(trained):
    model, _ = trained
    generator, card = load_model(model)
    norm = card.output.normalization
    out = predict(generator, torch.rand(3, 3, 32, 32) * 2 - 1, norm)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    for band in range(3):
        assert norm.low[band] <= float(out[:, band].min()) and float(out[:, band].max()) <= norm.high[band]


def test_the_payload_used_below_really_runs_code_when_unpickled(tmp_path):
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("entry", ["weights.safetensors", "model.json"])
def test_a_pickle_inside_the_package_is_refused_and_never_run(trained, tmp_path, entry):
    model, _ = trained
    marker = tmp_path / "ran"
    bad = rewrite(model, tmp_path / "bad.p2p", {entry: pickle.dumps(Payload(marker))})
    with pytest.raises(Pix2PixError, match="pickle"):
        load_model(bad)
    assert not marker.exists()


def test_a_pytorch_pickle_file_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"weights": Payload(marker)}, tmp_path / "model.p2p")
    assert not marker.exists()
    with pytest.raises(Pix2PixError, match="never opens them"):
        load_model(tmp_path / "model.p2p")
    assert not marker.exists()
    with pytest.raises(Pix2PixError, match="pickle"):
        load_checkpoint(tmp_path / "model.p2p")
    assert not marker.exists()


def test_a_pickled_checkpoint_is_refused_when_resuming(trained, tmp_path):
    _, chips = trained
    model = tmp_path / "m.p2p"
    train(chips, model, TrainConfig(epochs=1, ngf=4, ndf=4))
    marker = tmp_path / "ran"
    ckpt = checkpoint_path(model)
    rewrite(ckpt, tmp_path / "tmp.zip", {"tensors.safetensors": pickle.dumps(Payload(marker))})
    (tmp_path / "tmp.zip").replace(ckpt)
    with pytest.raises(Pix2PixError, match="pickle"):
        train(chips, model, TrainConfig(epochs=2, ngf=4, ndf=4), resume=True)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../model.json", "/tmp/model.json", "sub/../../model.json", "C:model.json"])
def test_entries_that_point_outside_are_refused(trained, tmp_path, name):
    model, _ = trained
    with zipfile.ZipFile(model) as archive:
        order = archive.namelist()
    names = [name if n == "model.json" else n for n in order]
    bad = rewrite(model, tmp_path / "bad.p2p", names=names)
    with pytest.raises(Pix2PixError, match="outside the package"):
        load_model(bad)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_missing_extra_or_duplicate_entries_are_refused(trained, tmp_path):
    model, _ = trained
    with zipfile.ZipFile(model) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    cases = {
        "missing": [(n, d) for n, d in entries.items() if n != "preview.png"],
        "extra": [*entries.items(), ("notes.txt", b"hello")],
        "duplicate": [*entries.items(), ("model.json", entries["model.json"])],
    }
    for label, items in cases.items():
        path = tmp_path / f"{label}.p2p"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in items:
                archive.writestr(name, data)
        with pytest.raises(Pix2PixError, match="expected exactly"):
            load_model(path)


def test_damaged_or_foreign_packages_are_explained(trained, tmp_path):
    model, _ = trained
    (tmp_path / "text.p2p").write_text("not a zip")
    with pytest.raises(Pix2PixError, match="not a zip"):
        load_model(tmp_path / "text.p2p")
    with pytest.raises(Pix2PixError, match="does not exist"):
        load_model(tmp_path / "none.p2p")
    metadata = json.loads(zipfile.ZipFile(model).read("model.json"))
    newer_json = json.dumps({**metadata, "format_version": MODEL_VERSION + 1}).encode()
    newer = rewrite(model, tmp_path / "newer.p2p", {"model.json": newer_json})
    with pytest.raises(Pix2PixError, match="Update the plugin"):
        load_model(newer)
    other = {**metadata, "architecture": {**metadata["architecture"],
                                          "generator": {**metadata["architecture"]["generator"], "ngf": 8}}}
    mismatch = rewrite(model, tmp_path / "mismatch.p2p", {"model.json": json.dumps(other).encode()})
    with pytest.raises(Pix2PixError, match="do not match the architecture"):
        load_model(mismatch)
    truncated = rewrite(model, tmp_path / "cut.p2p", {"weights.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{}"})
    with pytest.raises(Pix2PixError, match="not a safetensors file"):
        load_model(truncated)


def test_a_failed_write_leaves_the_previous_package_untouched(trained, tmp_path):
    model, _ = trained
    target = tmp_path / "keep.p2p"
    target.write_bytes(model.read_bytes())
    card, tensors = read_package(model)
    with pytest.raises(TypeError):
        write_package(target, replace(card, training={**card.training, "bad": object()}), tensors, b"", b"")
    assert target.read_bytes() == model.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.p2p"]


def test_optimizer_state_survives_the_checkpoint_and_continues_identically(tmp_path):
    def setup():
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        return net, torch.optim.Adam(net.parameters(), lr=0.1, betas=(0.5, 0.999))

    net, optimizer = setup()
    for _ in range(2):
        optimizer.zero_grad()
        net(torch.ones(2, 4)).pow(2).sum().backward()
        optimizer.step()
    tensors, structure = flatten_optimizer(optimizer.state_dict(), "opt")
    save_checkpoint(tmp_path / "state.ckpt", {"opt": structure}, tensors)
    document, loaded = load_checkpoint(tmp_path / "state.ckpt")
    copy, copy_optimizer = setup()
    copy.load_state_dict(net.state_dict())
    copy_optimizer.load_state_dict(unflatten_optimizer(document["opt"], loaded))
    for model, opt in ((net, optimizer), (copy, copy_optimizer)):
        opt.zero_grad()
        model(torch.ones(2, 4)).pow(2).sum().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), copy.parameters()))


def test_the_checkpoint_lives_beside_the_model(tmp_path):
    assert checkpoint_path(tmp_path / "roads.p2p") == (tmp_path / "roads.p2p.ckpt").absolute()
