"""Chips → tensors: both folder layouts, strict pairing, normalisation, validity masks, augmentation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
import torch

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.manifest import load_manifest
from pix2pix_qgis.data.augment import dihedral
from pix2pix_qgis.data.dataset import ChipDataset
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.data.normalization import Normalization
from pix2pix_qgis.data.sampling import epoch_order, make_loader, training_loader

from ..builders import esri_folder, mapping_chips


@pytest.fixture
def chips(tmp_path):
    return mapping_chips(tmp_path, b_nodata_block=True)


def test_manifest_split_names_and_statistics_are_used(chips):
    manifest = load_manifest(chips)
    folder = open_chips(chips)
    assert folder.train == tuple(c["name"] for c in manifest["chips"] if c["split"] == "train")
    assert folder.validation == tuple(c["name"] for c in manifest["chips"] if c["split"] == "validation")
    assert folder.validation and folder.train and folder.tile_size == 32
    assert folder.norm_b.low == tuple(s["p01"] for s in manifest["b"]["statistics"])
    assert folder.norm_a.high == tuple(s["p99"] for s in manifest["a"]["statistics"])
    assert folder.grid == manifest["grid"] and folder.band_info["b"]["nodata"] == -9999.0


def test_normalisation_maps_p01_p99_onto_minus_one_one_and_clips():
    norm = Normalization((10.0, -5.0), (20.0, 5.0))
    data = np.array([[[10, 15, 20, 0, 30]], [[-5, 0, 5, -100, 100]]], dtype="float32")
    out = norm.apply(data)
    np.testing.assert_allclose(out, [[[-1, 0, 1, -1, 1]], [[-1, 0, 1, -1, 1]]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(norm.invert(out), np.clip(data, [[[10]], [[-5]]], [[[20]], [[5]]]))
    back = norm.invert(torch.from_numpy(out))
    assert isinstance(back, torch.Tensor)
    constant = Normalization.from_statistics([{"band": 1, "p01": 7.0, "p99": 7.0}], "target (B)")
    assert constant.apply(np.full((1, 1, 1), 7.0))[0, 0, 0] == 0.0
    with pytest.raises(Pix2PixError, match="Band 2 of the target"):
        Normalization.from_statistics([{"band": 1, "p01": 0, "p99": 1}, {"band": 2, "p01": None, "p99": None}],
                                      "target (B)")


def test_samples_are_the_chip_files_normalised_with_nodata_masked(chips):
    folder = open_chips(chips)
    dataset = ChipDataset(folder, "train", with_units=True)
    seen_nodata = False
    for index, name in enumerate(folder.train):
        sample = dataset[index]
        with rasterio.open(chips / "images" / name) as src:
            a = src.read().astype("float32")
        with rasterio.open(chips / "images2" / name) as src:
            b = src.read()
        valid = (b != -9999).all(axis=0)
        seen_nodata |= not valid.all()
        np.testing.assert_array_equal(sample["mask"][0].numpy(), valid.astype("float32"))
        expected_a = folder.norm_a.apply(a)
        expected_a[:, ~valid] = 0
        np.testing.assert_array_equal(sample["a"].numpy(), expected_a)
        np.testing.assert_array_equal(sample["b"].numpy()[:, ~valid], 0)
        np.testing.assert_array_equal(sample["b_units"].numpy()[:, valid], b[:, valid])
        assert sample["a"].shape == (3, 32, 32) and sample["b"].dtype == torch.float32
    assert seen_nodata


def test_internal_masks_and_nan_are_invalid_too(tmp_path):
    rng = np.random.default_rng(0)
    a = {f"{i}.tif": rng.integers(0, 255, (2, 32, 32)).astype("uint8") for i in range(4)}
    b = {name: rng.random((1, 32, 32)).astype("float32") for name in a}
    b["1.tif"][0, :5, :7] = np.nan
    mask = np.ones((32, 32), bool)
    mask[10:20, 3:9] = False
    folder = open_chips(esri_folder(tmp_path, a, b, masks_b={"2.tif": mask}), validation=0)
    dataset = ChipDataset(folder, "train")
    by_name = {name: dataset[i]["mask"][0].numpy().astype(bool) for i, name in enumerate(folder.train)}
    assert (~by_name["1.tif"]).sum() == 35 and not by_name["1.tif"][:5, :7].any()
    np.testing.assert_array_equal(by_name["2.tif"], mask)
    assert by_name["0.tif"].all()
    assert np.isfinite(dataset[folder.train.index("1.tif")]["b"].numpy()).all()


def test_esri_folder_pairs_by_name_and_holds_out_a_seeded_fraction(tmp_path, chips):
    esri = tmp_path / "esri"
    shutil.copytree(chips / "images", esri / "images")
    shutil.copytree(chips / "images2", esri / "images2")
    first = open_chips(esri, validation=0.25, seed=3)
    again = open_chips(esri, validation=0.25, seed=3)
    other = open_chips(esri, validation=0.25, seed=4)
    total = len(load_manifest(chips)["chips"])
    assert first.layout == "esri" and len(first.train) + len(first.validation) == total
    assert len(first.validation) == round(0.25 * total)
    assert first.train == again.train and first.validation == again.validation
    assert set(first.validation) != set(other.validation)
    assert not set(first.train) & set(first.validation)
    assert first.grid["crs"] == "EPSG:32633" and first.grid["cell_size"] == [10.0, 10.0]
    assert all(lo < hi for lo, hi in zip(first.norm_a.low, first.norm_a.high))


def test_esri_folder_with_unpaired_chips_names_them(tmp_path, chips):
    esri = tmp_path / "esri"
    shutil.copytree(chips / "images", esri / "images")
    shutil.copytree(chips / "images2", esri / "images2")
    (esri / "images2" / "000000003.tif").unlink()
    (esri / "images2" / "000000007.tif").unlink()
    with pytest.raises(Pix2PixError) as error:
        open_chips(esri)
    message = str(error.value)
    assert "000000003.tif" in message and "000000007.tif" in message
    total = len(load_manifest(chips)["chips"])
    assert f"images/ has {total} chips and images2/ has {total - 2}" in message


def test_equal_counts_with_different_names_are_never_paired_by_position(tmp_path, chips):
    esri = tmp_path / "esri"
    shutil.copytree(chips / "images", esri / "images")
    shutil.copytree(chips / "images2", esri / "images2")
    (esri / "images2" / "000000005.tif").rename(esri / "images2" / "extra_b.tif")
    with pytest.raises(Pix2PixError) as error:
        open_chips(esri)
    assert "000000005.tif" in str(error.value) and "extra_b.tif" in str(error.value)


def test_a_chip_listed_in_chips_json_but_missing_is_named(chips):
    (chips / "images" / "000000002.tif").unlink()
    with pytest.raises(Pix2PixError, match=r"images/ lacks 1 of them: 000000002\.tif"):
        open_chips(chips)


def test_a_folder_that_is_no_chips_folder_is_refused(tmp_path):
    with pytest.raises(Pix2PixError, match="not a chips folder"):
        open_chips(tmp_path)
    with pytest.raises(Pix2PixError, match="does not exist"):
        open_chips(tmp_path / "nowhere")


def test_a_chip_of_another_size_is_named(tmp_path):
    rng = np.random.default_rng(0)
    a = {"0.tif": rng.integers(0, 9, (1, 32, 32)).astype("uint8"),
         "1.tif": rng.integers(0, 9, (1, 16, 16)).astype("uint8")}
    with pytest.raises(Pix2PixError, match=r"1\.tif is 16×16 px but the folder's chips are 32×32"):
        open_chips(esri_folder(tmp_path, a, dict(a)), validation=0)


def test_the_eight_dihedral_transforms_are_distinct_and_invertible():
    x = torch.arange(12.0).reshape(1, 3, 4)[..., :3].repeat(2, 1, 1)
    square = torch.arange(9.0).reshape(1, 3, 3)
    images = [dihedral(square, k) for k in range(8)]
    assert len({tuple(img.flatten().tolist()) for img in images}) == 8
    assert sorted(images[5].flatten().tolist()) == sorted(square.flatten().tolist())
    assert dihedral(x, 0).shape == x.shape


def test_augmentation_applies_the_same_transform_to_a_b_and_mask(chips):
    folder = open_chips(chips)
    plain = ChipDataset(folder, "train", with_units=True)
    augmented = ChipDataset(folder, "train", augment=True, with_units=True, seed=1)
    used = set()
    for epoch in range(1, 4):
        augmented.set_epoch(epoch)
        for index in range(len(plain)):
            before, after = plain[index], augmented[index]
            keys = ("a", "b", "mask", "b_units")
            matches = [k for k in range(8) if all(torch.equal(dihedral(before[key], k), after[key]) for key in keys)]
            assert matches, f"chip {index}: no single transform maps A, B and the mask together"
            used.add(matches[0])
            # nothing radiometric: the target's values are only moved around
            assert torch.equal(before["b_units"].flatten().sort().values, after["b_units"].flatten().sort().values)
    assert len(used) == 8


def test_augmentation_depends_only_on_seed_epoch_and_index(chips):
    folder = open_chips(chips)
    one = ChipDataset(folder, "train", augment=True, seed=5)
    two = ChipDataset(folder, "train", augment=True, seed=5)
    one.set_epoch(2)
    two.set_epoch(2)
    assert all(torch.equal(one[i]["a"], two[i]["a"]) for i in (3, 0, 3))
    two.set_epoch(3)
    assert not all(torch.equal(one[i]["a"], two[i]["a"]) for i in range(len(one)))


def test_validation_samples_are_never_augmented(chips):
    folder = open_chips(chips)
    dataset = ChipDataset(folder, "validation", with_units=True)
    dataset.set_epoch(7)
    with rasterio.open(folder.folder_b / folder.validation[0]) as src:
        raw = src.read()
    np.testing.assert_array_equal(dataset[0]["b_units"].numpy()[:, raw[0] != -9999], raw[:, raw[0] != -9999])


def test_epoch_order_is_seeded_and_resume_skips_whole_batches(chips):
    folder = open_chips(chips)
    dataset = ChipDataset(folder, "train")
    assert epoch_order(len(dataset), 0, 1) == epoch_order(len(dataset), 0, 1)
    assert epoch_order(len(dataset), 0, 1) != epoch_order(len(dataset), 0, 2)
    assert sorted(epoch_order(len(dataset), 0, 1)) == list(range(len(dataset)))
    loader, sampler = training_loader(dataset, 4, seed=0)
    sampler.set_epoch(2)
    full = [batch["index"].tolist() for batch in loader]
    sampler.set_epoch(2, skip_batches=3)
    resumed = [batch["index"].tolist() for batch in loader]
    assert resumed == full[3:]
    assert full[0] == epoch_order(len(dataset), 0, 2)[:4]
    sampler.set_epoch(3)
    assert [batch["index"].tolist() for batch in loader] != full


def test_persistent_workers_augment_by_the_epoch_the_sampler_names(chips):
    folder = open_chips(chips)
    dataset = ChipDataset(folder, "train", augment=True, seed=2)
    inline, inline_sampler = training_loader(dataset, 4, seed=0)
    workers, worker_sampler = training_loader(dataset, 4, seed=0, num_workers=2)
    for epoch in (1, 2, 3):  # the workers started in epoch 1 must follow the epoch after it
        inline_sampler.set_epoch(epoch)
        worker_sampler.set_epoch(epoch)
        batches = list(zip(inline, workers))
        assert len(batches) == len(inline) > 1
        for x, y in batches:
            assert torch.equal(x["a"], y["a"]) and torch.equal(x["mask"], y["mask"])


def test_worker_processes_give_the_same_batches(chips):
    folder = open_chips(chips)
    dataset = ChipDataset(folder, "validation", with_units=True)
    inline = list(make_loader(dataset, 3, num_workers=0))
    workers = list(make_loader(dataset, 3, num_workers=2))
    assert len(inline) == len(workers) > 0
    for x, y in zip(inline, workers):
        assert all(torch.equal(x[key], y[key]) for key in ("a", "b", "mask", "b_units", "index"))
