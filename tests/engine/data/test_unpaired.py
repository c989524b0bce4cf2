"""The unpaired chips reader: a folder export-unpaired wrote, Esri's CycleGAN layout, and hostile folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from affine import Affine

from pix2pix_qgis import ChipSpec, Pix2PixError, UnpairedSpec, export_chips, export_unpaired
from pix2pix_qgis.chips.manifest import UNPAIRED, load_manifest
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.data.unpaired import DomainDataset, open_unpaired


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An unpaired export: A 3-band uint8 UTM (nodata 0), B 1-band float32 in WGS 84 far away."""
    from ..builders import write_raster

    root = tmp_path_factory.mktemp("unpaired")
    rng = np.random.default_rng(5)
    a = rng.integers(1, 255, (3, 128, 128), dtype="uint8")
    b = rng.normal(500, 20, (1, 100, 110)).astype("float32")
    path_a = write_raster(root / "a.tif", a, nodata=0)
    path_b = write_raster(root / "b.tif", b, crs="EPSG:4326", transform=Affine(0.0003, 0, -60.0, 0, -0.0003, -10.0),
                          nodata=-1.0)
    export_unpaired(path_a, path_b, root / "out", UnpairedSpec(tile_size=32, stride=32, validation=0.25, seed=1))
    return root / "out"


def test_the_reader_returns_what_the_export_wrote(exported):
    chips = open_unpaired(exported)
    manifest = load_manifest(exported, UNPAIRED)
    assert chips.layout == "chips.json" and chips.tile_size == 32
    for domain, key in ((chips.a, "a"), (chips.b, "b")):
        side = manifest[key]
        assert domain.train == tuple(c["name"] for c in side["chips"] if c["split"] == "train")
        assert domain.validation == tuple(c["name"] for c in side["chips"] if c["split"] == "validation")
        assert domain.train and domain.validation and domain.folder == exported / domain.name / "images"
        assert domain.norm.low == tuple(s["p01"] for s in side["statistics"])
        assert domain.norm.high == tuple(s["p99"] for s in side["statistics"])
        assert domain.grid == side["grid"] and domain.bands == tuple(side["bands"])
    assert (chips.a.channels, chips.a.dtype, chips.a.nodata) == (3, "uint8", 0.0)
    assert (chips.b.channels, chips.b.dtype, chips.b.nodata) == (1, "float32", -1.0)
    assert chips.b.grid["crs"] == "EPSG:4326" and chips.domain("B") is chips.b
    data, valid = chips.b.read(chips.b.train[0])
    assert data.shape == (1, 32, 32) and data.dtype == np.float32 and valid.shape == (32, 32) and valid.all()
    described = chips.describe()
    assert described["chip_size"] == 32 and described["b"]["normalization"]["method"] == "percentile-clip"
    assert described["chips"]["a_train"] == len(chips.a.train)
    json.dumps(described, allow_nan=False)


def test_the_domain_dataset_gives_normalised_tensors_and_repeatable_augmentation(exported):
    domain = open_unpaired(exported).a
    dataset = DomainDataset(domain, "train", augment=True, seed=2)
    assert len(dataset) == len(domain.train)
    sample = dataset[(3, 0)]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (1, 32, 32) and float(sample["image"].abs().max()) <= 1.0
    assert torch.equal(dataset[(3, 0)]["image"], sample["image"])
    data, _ = domain.read(domain.train[0])
    plain = DomainDataset(domain, "train")[0]["image"].numpy()
    np.testing.assert_allclose(plain, domain.norm.apply(data), atol=1e-6)


def test_an_esri_cyclegan_folder_is_read_with_pro_statistics_and_a_seeded_holdout(exported, tmp_path):
    esri = tmp_path / "esri"
    shutil.copytree(exported, esri)
    (esri / "chips.json").unlink()  # what Pro writes: A/ and B/ with images/ and the Esri files
    chips = open_unpaired(esri, validation=0.2, seed=4)
    assert chips.layout == "esri-cyclegan" and chips.tile_size == 32
    emd = json.loads((esri / "B" / "esri_model_definition.emd").read_text())["AllTilesStats"]
    assert chips.b.norm.method == "fixed-range"
    assert chips.b.norm.low == (emd[0]["Min"],) and chips.b.norm.high == (emd[0]["Max"],)
    every = sorted(p.name for p in (esri / "A" / "images").iterdir())
    assert sorted(chips.a.train + chips.a.validation) == every
    assert len(chips.a.validation) == round(0.2 * len(every))
    assert open_unpaired(esri, validation=0.2, seed=4).a.validation == chips.a.validation
    for name in ("A", "B"):  # without Pro's statistics: percentiles of the chips
        for side in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
            (esri / name / side).unlink()
    chips = open_unpaired(esri, validation=0.2, seed=4)
    assert chips.a.norm.method == "percentile-clip" and len(chips.a.norm.low) == 3
    assert any("percentiles" in note for note in chips.notes)


def _break_manifest(folder, change):
    path = folder / "chips.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: shutil.rmtree(f / "B"), r"lacks 1 of them|B/images lacks"),
        (lambda f: (f / "chips.json").write_text('{"format": "pix2pix-unpaired-chips", "form'),
         r"chips.json.*(truncated|not valid JSON|cannot be read)"),
        (lambda f: _break_manifest(f, lambda m: m.update(format_version=99)),
         r"version 99; this engine reads 'pix2pix-unpaired-chips' up to version 1\. Update the plugin"),
        (lambda f: _break_manifest(f, lambda m: m["b"].update(chips=[])), r"chips.json.*b.*chips"),
        (lambda f: _break_manifest(f, lambda m: m["a"]["chips"][0].update(name="../../etc/passwd")),
         r"chips.json"),
        (lambda f: _break_manifest(f, lambda m: [c.update(split="validation") for c in m["b"]["chips"]]),
         r"\(domain B\) lists no training chips"),
    ],
)
def test_hostile_unpaired_folders_are_refused_with_the_fix(exported, tmp_path, damage, message):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    damage(folder)
    with pytest.raises(Pix2PixError, match=message):
        open_unpaired(folder)


def test_missing_domains_empty_domains_and_the_wrong_kind_of_folder(exported, tmp_path):
    with pytest.raises(Pix2PixError, match="does not exist"):
        open_unpaired(tmp_path / "nowhere")
    esri = tmp_path / "esri"
    shutil.copytree(exported, esri)
    (esri / "chips.json").unlink()
    shutil.rmtree(esri / "B")
    with pytest.raises(Pix2PixError, match=r"no chips.json and lacks B/images .*Run 'export-unpaired'"):
        open_unpaired(esri)
    (esri / "B" / "images").mkdir(parents=True)
    with pytest.raises(Pix2PixError, match=r"B/images holds no chips; domain B is empty"):
        open_unpaired(esri)
    paired = tmp_path / "paired"
    raster = exported.parent / "a.tif"
    export_chips(raster, raster, paired, ChipSpec(tile_size=32, stride=32, validation=0))
    with pytest.raises(Pix2PixError, match=r"describes paired chips from 'export'.*Run export-unpaired"):
        open_unpaired(paired)
    with pytest.raises(Pix2PixError, match=r"describes unpaired chips .*train --model cyclegan"):
        open_chips(exported)


def test_esri_domains_of_other_chip_sizes_are_refused(exported, tmp_path):
    from ..builders import write_raster

    esri = tmp_path / "esri"
    shutil.copytree(exported, esri)
    (esri / "chips.json").unlink()
    shutil.rmtree(esri / "B" / "images")
    write_raster(esri / "B" / "images" / "000000000000.tif", np.ones((1, 64, 64), "float32"))
    with pytest.raises(Pix2PixError, match=r"chips of A are 32 px and those of B 64 px"):
        open_unpaired(esri)
