"""The model card: model.json read into frozen, validated objects, and written back without loss."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import save as save_safetensors

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.infer.translate import translate_raster
from pix2pix_qgis.model.archive import cpu_tensors, to_json, write_zip
from pix2pix_qgis.model.card import ModelCard, plain
from pix2pix_qgis.model.discriminators import DiscriminatorSpec
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import GeneratorSpec
from pix2pix_qgis.model.package import load_model, read_package, write_package
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips, write_raster
from ..cli_runs import translate_cli

DATA = Path(__file__).parent / "data"
OLD_TRAINED = DATA / "model-98b676c-trained.json"  # written by the engine before the card (data/README.md)
OLD_REFERENCE = DATA / "model-98b676c-reference.json"


def package_with(model_json: bytes, path: Path) -> Path:
    """A .p2p holding ``model_json`` byte for byte, with seeded weights of the generator it describes."""
    spec = GeneratorSpec.from_dict(json.loads(model_json)["architecture"]["generator"])
    weights = build_generator(spec, torch.Generator().manual_seed(0)).state_dict()
    return write_zip(path, {"model.json": model_json, "weights.safetensors": save_safetensors(cpu_tensors(weights)),
                            "preview.png": b"", "losses.png": b"", "metrics.csv": b""})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A package written by this engine's training (one epoch, tiny)."""
    folder = tmp_path_factory.mktemp("card")
    chips = mapping_chips(folder, size=128, tile=32, b_nodata_block=True)
    return Path(train(chips, folder / "model.p2p", TrainConfig(epochs=1, ngf=2, ndf=2, seed=0))["output"])


@pytest.mark.parametrize("fixture", [OLD_TRAINED, OLD_REFERENCE], ids=["trained", "imported"])
def test_model_json_of_the_previous_engine_round_trips_byte_for_byte(fixture):
    data = fixture.read_bytes()
    card = ModelCard.from_dict(json.loads(data), fixture)
    assert card.to_dict() == json.loads(data)
    assert to_json(card.to_dict()) == data


def test_model_json_of_a_package_trained_now_round_trips_byte_for_byte(trained):
    data = zipfile.ZipFile(trained).read("model.json")
    card, _ = read_package(trained)
    assert to_json(card.to_dict()) == data
    assert card.training["chips"]["train"] > 0 and card.metrics.best_epoch == 1 and len(card.metrics.history) == 1


def test_a_trained_package_of_the_previous_engine_loads_and_translates(tmp_path):
    document = json.loads(OLD_TRAINED.read_bytes())
    generator, card = load_model(package_with(OLD_TRAINED.read_bytes(), tmp_path / "old.p2p"))
    assert card.chip_size == 32 and card.format_version == 1
    assert card.generator == GeneratorSpec(3, 3, 5, 2, "batch", True)
    assert card.input.bands == (1, 2, 3) and card.input.dtype == "uint8" and card.input.nodata is None
    assert card.output.dtype == "float32" and card.output.nodata == -9999.0
    for side, name in ((card.input, "input"), (card.output, "output")):
        assert list(side.normalization.low) == document[name]["normalization"]["low"]
        assert list(side.normalization.high) == document[name]["normalization"]["high"]
        assert side.normalization.method == "percentile-clip"
    assert card.grid.crs == "EPSG:32633" and card.grid.cell_size == (10.0, 10.0)
    assert card.grid.width == card.grid.height == 128
    assert card.metrics.best_epoch == 2 and card.metrics.best_metric == "l1"
    assert [row["epoch"] for row in card.metrics.history] == [1, 2]
    assert plain(card.metrics.best) == document["metrics"]["best"]
    assert card.discriminator == DiscriminatorSpec(6, 2, 3, "batch", scales=1, spectral_norm=False)  # as it was
    assert card.training["config"]["ngf"] == 2
    assert not generator.training
    source = write_raster(tmp_path / "in.tif", np.random.default_rng(0).integers(0, 255, (3, 48, 40), dtype="uint8"))
    result = translate_raster(source, tmp_path / "old.p2p", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as out, rasterio.open(source) as src:
        assert (out.count, out.dtypes[0], out.nodata) == (3, "float32", -9999.0)
        assert (out.crs, out.transform, out.shape) == (src.crs, src.transform, src.shape)
        values = out.read()
    assert result["tile_size"] == 64  # infer.translate.default_tiling: two chips of 32 px
    for band in range(3):  # the model predicts inside its target's normalisation range
        low, high = card.output.normalization.low[band], card.output.normalization.high[band]
        assert low - 1e-3 <= values[band].min() and values[band].max() <= high + 1e-3


def test_an_imported_package_of_the_previous_engine_loads(tmp_path):
    _, card = load_model(package_with(OLD_REFERENCE.read_bytes(), tmp_path / "old.p2p"))
    assert card.generator == GeneratorSpec(1, 3, 7, 4, "instance-affine", True) and card.chip_size == 128
    assert card.input.normalization.method == "fixed-range" and card.output.normalization.high == (255.0,) * 3
    assert card.grid is None and card.discriminator is None and card.metrics.history == ()
    assert card.inference["norm_stats"] == "per-image" and card.training["checkpoint"] == "latest_net_G.pth"


def test_fields_of_a_newer_writer_survive_a_read_and_a_rewrite(tmp_path):
    document = json.loads(OLD_TRAINED.read_bytes())
    document["licence"] = {"name": "CC-BY-4.0"}
    document["input"]["scale"] = [1, 2, 3]
    document["output"]["normalization"]["gamma"] = 2.2
    document["architecture"]["generator"]["attention"] = False
    document["grid"]["epoch"] = 2024.5
    card, tensors = read_package(package_with(json.dumps(document).encode(), tmp_path / "newer.p2p"))
    assert card.to_dict() == document
    rewritten, _ = read_package(write_package(tmp_path / "again.p2p", card, tensors, b"", b""))
    assert rewritten.to_dict() == document and rewritten == card


def test_the_card_is_read_only(tmp_path):
    card = ModelCard.from_dict(json.loads(OLD_TRAINED.read_bytes()), OLD_TRAINED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.chip_size = 64
    with pytest.raises(TypeError):
        card.training["config"]["epochs"] = 99
    with pytest.raises(TypeError):
        card.metrics.history[0]["epoch"] = 7
    assert isinstance(card.metrics.history, tuple) and isinstance(card.input.bands, tuple)


def _set(path: str, value):
    """A change of model.json: the field at dotted ``path`` becomes ``value`` (or ``value(old)``)."""
    def change(document):
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        node[last] = value(node[last]) if callable(value) else value
    return change


def _two_bands(side: str):
    """A change of model.json: ``side``'s normalisation covers only its first two bands."""
    def change(document):
        norm = document[side]["normalization"]
        norm["low"], norm["high"] = norm["low"][:2], norm["high"][:2]
    return change


@pytest.mark.parametrize(("change", "field", "problem"), [
    (_set("input.normalization.high", lambda high: high[:2]), "input.normalization", "3 low but 2 high value(s)"),
    (_two_bands("output"), "output.normalization",
     "covers 2 band(s) but the generator has 3 (architecture.generator.out_channels)"),
    (_two_bands("input"), "input.normalization",
     "covers 2 band(s) but the generator has 3 (architecture.generator.in_channels)"),
    (_set("input.normalization.low", lambda low: [low[0], 214.0, low[2]]), "input.normalization",
     "band 2 maps [214.0, 214.0]"),
    (_set("input.bands", [1, 2]), "input.bands", "lists 2 band(s) but the generator has 3"),
    (_set("chip_size", 48), "chip_size", "48 px is not a multiple of 2^depth = 32 px"),
    (_set("architecture.generator.depth", 6), "chip_size", "32 px is not a multiple of 2^depth = 64 px"),
    (_set("grid.crs", 32633), "grid.crs", "32633 is not of type"),
    (_set("grid.cell_size", [10.0]), "grid.cell_size", "[10.0]"),
    (_set("metrics.history", "none"), "metrics.history", "'none' is not of type"),
    (_set("training", []), "training", "[] is not of type"),
])
def test_values_the_schema_cannot_rule_out_are_refused_naming_file_field_and_fix(tmp_path, change, field, problem):
    document = json.loads(OLD_TRAINED.read_bytes())
    change(document)
    bad = package_with(json.dumps(document).encode(), tmp_path / "bad.p2p")
    with pytest.raises(Pix2PixError) as caught:
        load_model(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: model.json is invalid at {field}: ") and problem in message
    assert message.endswith("train or import it again.")


def test_a_bad_card_is_exit_2_naming_the_package_through_the_cli(tmp_path):
    document = json.loads(OLD_TRAINED.read_bytes())
    document["chip_size"] = 40
    bad = package_with(json.dumps(document).encode(), tmp_path / "bad model.p2p")
    source = write_raster(tmp_path / "in.tif", np.zeros((3, 32, 32), dtype="uint8"))
    code, error = translate_cli(source, bad, tmp_path / "out.tif")
    assert code == 2 and error["kind"] == "bad_input"
    assert error["message"].startswith(f"{bad}: model.json is invalid at chip_size: 40 px")
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize(("change", "problem"), [
    (_set("input.normalization.high", lambda high: [high[0], high[1], math.inf]),
     "model.json has inf at input.normalization.high[2], which is not a finite number"),
    (_set("output.normalization.low", lambda low: [math.nan, *low[1:]]),
     "model.json has nan at output.normalization.low[0], which is not a finite number"),
])
def test_non_finite_numbers_are_refused_when_model_json_is_read_naming_the_field(tmp_path, change, problem):
    """NaN and infinity never reach the card: every JSON document is refused with them (core.documents)."""
    document = json.loads(OLD_TRAINED.read_bytes())
    change(document)
    bad = package_with(json.dumps(document).encode(), tmp_path / "bad.p2p")
    with pytest.raises(Pix2PixError) as caught:
        load_model(bad)
    assert str(caught.value).startswith(f"{bad}: {problem}") and str(caught.value).endswith("write it again.")


# ---------------------------------------------------------------- CycleGAN cards


def test_a_cyclegan_card_round_trips_and_swaps_its_sides_for_b2a(tmp_path):
    from pix2pix_qgis.model.package import B2A_WEIGHTS

    from ..models import write_cyclegan_model

    path = write_cyclegan_model(tmp_path / "cycle.p2p")
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("model.json"))
        assert B2A_WEIGHTS in archive.namelist()
    card = ModelCard.from_dict(document, path)
    assert card.to_dict() == document and card.format_version == 2
    back = card.direction("b2a")
    assert (back.input, back.output, back.generator, back.generator_b2a) == (
        card.output, card.input, card.generator_b2a, card.generator)
    assert back.direction("b2a") == card  # swapping twice is the identity
    b2a, state = read_package(path, "b2a")
    assert b2a == back and state["model.1.weight"].shape[1] == 1  # B→A reads B's one band


def test_a_pix2pix_card_writes_none_of_the_cyclegan_fields(trained):
    document = json.loads(zipfile.ZipFile(trained).read("model.json"))
    assert not {"model_type", "grid_b"} & set(document) and document["format_version"] == 1
    assert set(document["architecture"]) == {"generator", "discriminator"}


def _cycle_package(tmp_path: Path, change=None, drop: str | None = None, add: dict | None = None) -> Path:
    from ..models import write_cyclegan_model

    source = write_cyclegan_model(tmp_path / "source.p2p")
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist() if name != drop}
    if change is not None:
        document = json.loads(entries["model.json"])
        change(document)
        entries["model.json"] = json.dumps(document).encode()
    entries.update(add or {})
    return write_zip(tmp_path / "damaged.p2p", entries)


@pytest.mark.parametrize(("damage", "problem"), [
    ({"drop": "weights_b2a.safetensors"}, "a cyclegan model without weights_b2a.safetensors"),
    ({"change": lambda d: d["architecture"].pop("generator_b2a")}, "a CycleGAN model needs its B→A generator"),
    ({"change": lambda d: d.update(model_type="gan")}, "model_type"),
    ({"change": lambda d: d["architecture"]["generator"].update(type="transformer")}, "architecture"),
    ({"change": lambda d: d["architecture"]["generator"].pop("blocks")}, "blocks"),
    ({"change": lambda d: d["architecture"]["generator_b2a"].update(in_channels=3)}, "generator_b2a.in_channels"),
    ({"change": lambda d: d.update(chip_size=30)}, "not a multiple of 4 px"),
    ({"change": lambda d: d.update(format_version=3)}, "Update the plugin"),
])
def test_damaged_cyclegan_packages_are_refused_naming_the_problem(tmp_path, damage, problem):
    with pytest.raises(Pix2PixError, match=re.escape(problem) if "(" in problem else problem):
        load_model(_cycle_package(tmp_path, **damage), direction="b2a")


def test_a_pix2pix_package_with_a_second_weights_file_is_refused(trained, tmp_path):
    entries = {name: zipfile.ZipFile(trained).read(name) for name in zipfile.ZipFile(trained).namelist()}
    entries["weights_b2a.safetensors"] = entries["weights.safetensors"]
    with pytest.raises(Pix2PixError, match="a pix2pix model with weights_b2a.safetensors"):
        load_model(write_zip(tmp_path / "extra.p2p", entries))
