"""Training straight from an ArcGIS Pro "Export Tiles" folder, and our export read back the same way.

The fixture ``pro_folder`` is laid out as ArcGIS Pro's *Export Training Data For Deep
Learning* (metadata format Export Tiles, Input Raster + Additional Input Raster) writes it.
Where each detail comes from (``../shared/research/arcgis.md`` §1.2 unless stated):

- ``images/`` (Input Raster = model input) and ``images2/`` (Additional Input Raster =
  target), chips named by a 9-digit zero-padded index, the same name in both folders;
  GeoTIFF chips (Pro's default ``image_chip_format`` TIFF) on the input's map grid.
- ``esri_accumulated_stats.json``: Pro's pretty-printing (``"Key" : value``, two-space
  indent, as in Pro-written files in public repositories), keys ``Version``, ``NumBands``,
  ``TileSizeX/Y``, ``NumClasses``, ``NumTiles``, ``NumTilesAsDouble``, ``NextTileIndex``,
  ``OutputFeatures``, ``MetaDataMode`` = ``Export_Tiles``, ``MinCellSize``/``MaxCellSize``,
  ``InputRastersProps``, and ``BandStatsState`` per band with the running moments
  ``Min``, ``Max``, ``M1`` (mean), ``M2`` (sum of squared deviations), ``Num`` — the names
  arcgis.learn's ``merge_emd_and_stats`` reads (StdDev = sqrt(M2 / Num)).
- ``esri_model_definition.emd``: Pro's template with its placeholder strings
  (``"ImageHeight" : "e.g. 256"``, seen in a Pro-written .emd), ``InputRastersProps``,
  ``WellKnownBandNames (FYI, …)`` and the per-band ``AllTilesStats`` (input) and
  ``AllTilesStats2`` (additional raster) with ``BandName``, ``Min``, ``Max``, ``Mean``,
  ``StdDev`` (Esri's .emd documentation example; arcgis.learn's ``_norm_stats``).
- ``map.txt``: ``images\\NAME  images2\\NAME `` per pair — backslashes, two spaces and a
  trailing space as in Pro-written map.txt files, Windows line ends. UNCONFIRMED for two
  rasters (only image/label files were seen), so nothing here depends on it.
- ``stats.txt``: Pro's summary text.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pix2pix_qgis.chips.esri import Z_99
from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.contract.errors import Pix2PixError
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..conftest import write_raster
from ..train.test_training import Recorder

TILE = 32
CHIPS = 6
# What Pro recorded for the input (a 1-band DSM in metres) and the target (3-band 8-bit imagery).
PRO_A = [{"BandName": "Band_1", "Min": 80.0, "Max": 900.0, "Mean": 210.0, "StdDev": 40.0}]
PRO_B = [{"BandName": name, "Min": 0.0, "Max": 255.0, "Mean": mean, "StdDev": 74.0}
         for name, mean in (("Red", 127.0), ("Green", 128.0), ("Blue", 126.0))]


def pro_json(value: object) -> str:
    """JSON as Pro pretty-prints it: two-space indent and a space before each colon."""
    return json.dumps(value, indent=2).replace('": ', '" : ')


def make_pro_folder(root: Path, rng: np.random.Generator) -> Path:
    origin = Affine(0.5, 0.0, 300_000.0, 0.0, -0.5, 4_100_000.0)
    for index in range(CHIPS):
        name = f"{index:09d}.tif"
        transform = origin * Affine.translation(index * TILE, 0)
        dsm = rng.normal(210.0, 40.0, (1, TILE, TILE)).astype(np.float32)
        rgb = rng.integers(0, 256, (3, TILE, TILE), dtype=np.uint8)
        write_raster(root / "images" / name, dsm, crs="EPSG:32612", transform=transform)
        write_raster(root / "images2" / name, rgb, crs="EPSG:32612", transform=transform)
    cell = {"x": 0.5, "y": 0.5, "spatialReference": {"wkid": 32612, "latestWkid": 32612}}
    moments = [{"Min": b["Min"], "Max": b["Max"], "M1": b["Mean"], "M2": b["StdDev"] ** 2 * 1000.0, "Num": 1000.0}
               for b in PRO_A]
    accumulated = {
        "Version": 1, "NumBands": 1, "TileSizeX": TILE, "TileSizeY": TILE, "NumClasses": 0, "NumTiles": CHIPS,
        "NumTilesAsDouble": float(CHIPS), "NextTileIndex": CHIPS, "OutputFeatures": False,
        "MetaDataMode": "Export_Tiles", "MinCellSize": cell, "MaxCellSize": cell,
        "InputRastersProps": {"RasterCount": 2, "SensorName": "", "BandNames": ["Band_1"]},
        "BandStatsState": moments,
    }
    (root / "esri_accumulated_stats.json").write_text(pro_json(accumulated))
    definition = {
        "Framework": "e.g. CNTK", "ModelConfiguration": "some description",
        "ModelType": "e.g. ObjectDetection or ImageClassification", "ModelFile": "e.g. .\\trained.model",
        "ImageHeight": "e.g. 256", "ImageWidth": "e.g. 256", "ExtractBands": "e.g. [0, 1, 2]",
        "InputRastersProps": {"RasterCount": 2, "SensorName": "", "BandNames": ["Band_1"]},
        "AllTilesStats": PRO_A, "AllTilesStats2": PRO_B,
        "WellKnownBandNames (FYI, these band names can be used in ExtractBands)": ["Red", "Green", "Blue"],
    }
    (root / "esri_model_definition.emd").write_text(pro_json(definition))
    lines = [f"images\\{i:09d}.tif  images2\\{i:09d}.tif " for i in range(CHIPS)]
    (root / "map.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (root / "stats.txt").write_text(f"images = {CHIPS} *1*{TILE}*{TILE}\nclasses = 0\n")
    return root


@pytest.fixture
def pro_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    return make_pro_folder(tmp_path / "pro_export", rng)


def expected_range(band: dict[str, float]) -> tuple[float, float]:
    return (max(band["Min"], band["Mean"] - Z_99 * band["StdDev"]),
            min(band["Max"], band["Mean"] + Z_99 * band["StdDev"]))


def test_a_pro_folder_is_normalised_with_pros_statistics(pro_folder):
    chips = open_chips(pro_folder, validation=0.2, seed=0)
    assert chips.layout == "esri" and chips.tile_size == TILE and (chips.bands_a, chips.bands_b) == (1, 3)
    assert (len(chips.train), len(chips.validation)) == (5, 1)
    assert chips.norm_a.low[0] == pytest.approx(expected_range(PRO_A[0])[0])  # 210 − 2.326·40 ≈ 116.9
    assert chips.norm_a.high[0] == pytest.approx(expected_range(PRO_A[0])[1])
    # 8-bit target: mean ± 2.326·std passes 0 and 255, so the range is Pro's Min/Max (as in arcgis.learn).
    assert chips.norm_b.low == (0.0, 0.0, 0.0) and chips.norm_b.high == (255.0, 255.0, 255.0)
    assert "AllTilesStats" in chips.norm_a.to_dict()["source"]
    assert "AllTilesStats2" in chips.norm_b.to_dict()["source"]
    assert any("AllTilesStats2" in note for note in chips.notes)


def test_without_pro_statistics_the_percentiles_of_the_chips_are_used(pro_folder):
    for name in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        (pro_folder / name).unlink()
    chips = open_chips(pro_folder, validation=0.2, seed=0)
    assert chips.norm_a.source is None and chips.norm_a.method == "percentile-clip"
    # The chips are N(210, 40): their p01/p99 are near 117/303, not Pro's numbers exactly.
    assert 100 < chips.norm_a.low[0] < 135 and 285 < chips.norm_a.high[0] < 320
    assert sum("percentiles are computed" in note for note in chips.notes) == 2


def test_the_input_falls_back_to_band_stats_state_and_the_target_to_percentiles(pro_folder):
    emd = json.loads((pro_folder / "esri_model_definition.emd").read_text())
    del emd["AllTilesStats"], emd["AllTilesStats2"]
    (pro_folder / "esri_model_definition.emd").write_text(pro_json(emd))
    chips = open_chips(pro_folder, validation=0.2, seed=0)
    # StdDev from the running moments: sqrt(M2 / Num) = 40, Mean = M1.
    assert chips.norm_a.low[0] == pytest.approx(expected_range(PRO_A[0])[0])
    assert "BandStatsState" in chips.norm_a.source
    assert chips.norm_b.source is None
    assert any("No usable ArcGIS Pro statistics for the target" in note for note in chips.notes)


def test_statistics_of_another_band_count_are_ignored_and_said_so(pro_folder):
    emd = json.loads((pro_folder / "esri_model_definition.emd").read_text())
    emd["AllTilesStats2"] = PRO_B[:2]
    (pro_folder / "esri_model_definition.emd").write_text(pro_json(emd))
    chips = open_chips(pro_folder, validation=0.2, seed=0)
    assert chips.norm_b.source is None
    assert any("has 2 band(s) but the target chips have 3; ignored" in note for note in chips.notes)


def test_a_damaged_side_file_is_named_with_the_fix(pro_folder):
    (pro_folder / "esri_model_definition.emd").write_text('{"AllTilesStats" : [')
    with pytest.raises(Pix2PixError, match=r"esri_model_definition\.emd is not valid JSON.*delete the file"):
        open_chips(pro_folder)


def test_another_metadata_mode_is_reported(pro_folder):
    stats = json.loads((pro_folder / "esri_accumulated_stats.json").read_text())
    stats["MetaDataMode"] = "Classified_Tiles"
    (pro_folder / "esri_accumulated_stats.json").write_text(pro_json(stats))
    chips = open_chips(pro_folder)
    assert any("'Classified_Tiles', not 'Export_Tiles'" in note for note in chips.notes)


def test_training_on_a_pro_folder_records_pros_statistics(pro_folder, tmp_path):
    recorder = Recorder()
    config = TrainConfig(epochs=1, ngf=4, ndf=4, batch_size=2, lr=2e-3, validation=0.2, seed=0, device="cpu")
    result = train(pro_folder, tmp_path / "pro.p2p", config, recorder)
    card, _ = read_package(result["output"])
    assert card.input.normalization.low[0] == pytest.approx(expected_range(PRO_A[0])[0])
    assert "AllTilesStats" in card.input.normalization.source
    assert card.training["chips"]["layout"] == "esri"
    infos = [e["message"] for e in recorder.events if e["type"] == "info"]
    assert any("ArcGIS Pro's statistics from esri_model_definition.emd AllTilesStats2" in m for m in infos)


# --- our export, read as arcgis.learn reads it ----------------------------------------------------


@pytest.fixture
def our_export(tmp_path: Path, rng: np.random.Generator) -> Path:
    a = rng.normal(500.0, 50.0, (1, 128, 128)).astype(np.float32)
    b = rng.integers(0, 256, (3, 128, 128), dtype=np.uint8)
    path_a = write_raster(tmp_path / "a.tif", a)
    path_b = write_raster(tmp_path / "b.tif", b)
    export_chips(path_a, path_b, tmp_path / "chips", ChipSpec(tile_size=32, stride=32, validation=0.25, seed=0))
    return tmp_path / "chips"


def test_our_export_has_what_arcgis_learn_prepare_data_reads(our_export):
    """The checks of arcgis.learn's ``prepare_data`` for Pix2Pix (research notes §1.2, §2)."""
    stats = json.loads((our_export / "esri_accumulated_stats.json").read_text())
    assert stats["MetaDataMode"] == "Export_Tiles" and (our_export / "images2").is_dir()  # → dataset_type Pix2Pix
    emd = json.loads((our_export / "esri_model_definition.emd").read_text())
    for key, bands in (("AllTilesStats", 1), ("AllTilesStats2", 3)):  # min–max scaling per domain
        assert len(emd[key]) == bands
        for band in emd[key]:
            assert all(isinstance(band[k], (int, float)) and math.isfinite(band[k])
                       for k in ("Min", "Max", "Mean", "StdDev"))
            assert band["Min"] <= band["Mean"] <= band["Max"]
    assert emd["ImageHeight"] == emd["ImageWidth"] == 32
    # With InputRastersProps in the .emd, arcgis.learn also indexes the WellKnownBandNames key.
    assert "InputRastersProps" not in emd or any(k.startswith("WellKnownBandNames") for k in emd)
    names_a = sorted(p.name for p in (our_export / "images").glob("*.tif"))
    assert names_a == sorted(p.name for p in (our_export / "images2").glob("*.tif"))  # paired by sorted position
    for line in (our_export / "map.txt").read_text().splitlines():
        first, second = line.split()
        assert (our_export / first.replace("\\", "/")).is_file() and (our_export / second.replace("\\", "/")).is_file()


def test_our_export_without_its_manifest_is_read_through_its_esri_files(our_export):
    manifest = json.loads((our_export / "chips.json").read_text())
    (our_export / "chips.json").unlink()
    chips = open_chips(our_export, validation=0.25, seed=0)
    assert chips.layout == "esri" and chips.tile_size == 32 and (chips.bands_a, chips.bands_b) == (1, 3)
    assert "AllTilesStats" in chips.norm_a.source and "AllTilesStats2" in chips.norm_b.source
    stats = manifest["a"]["statistics"][0]
    assert chips.norm_a.low[0] == pytest.approx(max(stats["min"], stats["mean"] - Z_99 * stats["std"]))
    # The Gaussian estimate of p01/p99 from the .emd is close to the exported percentiles of this normal band.
    assert chips.norm_a.low[0] == pytest.approx(stats["p01"], abs=0.1 * stats["std"])
    assert chips.norm_a.high[0] == pytest.approx(stats["p99"], abs=0.1 * stats["std"])


def test_a_pro_folder_copy_with_extra_sidecars_still_pairs(pro_folder, tmp_path):
    """GDAL sidecars beside chips (.aux.xml, world files) are not chips."""
    copy = Path(shutil.copytree(pro_folder, tmp_path / "copy"))
    (copy / "images" / "000000000.tif.aux.xml").write_text("<PAMDataset/>")
    (copy / "images2" / "000000000.tfw").write_text("0.5\n0\n0\n-0.5\n300000\n4100000\n")
    with rasterio.open(copy / "images" / "000000000.tif") as src:
        assert src.count == 1
    assert len(open_chips(copy, validation=0.2).train) == 5


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # written bare, then the .pgw
def test_pro_png_chips_with_world_files_train_like_tiffs(tmp_path, rng):
    """Pro's PNG chip format (8-bit, up to 3 bands), with the world files GDAL writes beside PNGs."""
    root = tmp_path / "png_export"
    for folder in ("images", "images2"):
        (root / folder).mkdir(parents=True)
        for index in range(4):
            data = rng.integers(0, 256, (3, TILE, TILE), dtype=np.uint8)
            with rasterio.open(root / folder / f"{index:09d}.png", "w", driver="PNG", width=TILE, height=TILE,
                               count=3, dtype="uint8") as dst:
                dst.write(data)
            (root / folder / f"{index:09d}.pgw").write_text("0.5\n0\n0\n-0.5\n300000\n4100000\n")
    definition = {"AllTilesStats": PRO_B, "AllTilesStats2": PRO_B}
    (root / "esri_model_definition.emd").write_text(pro_json(definition))
    chips = open_chips(root, validation=0.25)
    assert (chips.tile_size, chips.bands_a, chips.bands_b, len(chips.train)) == (TILE, 3, 3, 3)
    assert chips.norm_a.high == (255.0, 255.0, 255.0) and "AllTilesStats" in chips.norm_a.source


def test_float_chips_with_a_nan_nodata_describe_as_json(tmp_path, rng):
    """NaN nodata (float chips) is implied by the validity rule; model.json (strict JSON) records none."""
    root = tmp_path / "nan_export"
    for folder in ("images", "images2"):
        for index in range(3):
            data = rng.normal(0.0, 1.0, (1, TILE, TILE)).astype(np.float32)
            data[0, :2, :2] = np.nan
            write_raster(root / folder / f"{index:09d}.tif", data, nodata=float("nan"))
    chips = open_chips(root, validation=0.34)
    assert chips.band_info["a"]["nodata"] is None and chips.band_info["b"]["nodata"] is None
    json.dumps(chips.describe(), allow_nan=False)
    assert np.isfinite(chips.norm_a.low[0]) and np.isfinite(chips.norm_b.high[0])
