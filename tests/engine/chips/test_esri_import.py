"""ArcGIS Pro folders read by the engine, and our export read the way arcgis.learn 2.4.4 reads it.

Pro's side files are the real ones in ``fixtures/pro/`` (byte-for-byte, provenance in its
README): a Pro 3.3 *Export Tiles* export with both kinds of statistics, and older exports
whose ``.emd`` is a template without statistics and whose accumulated statistics have no
``BandStatsState``. Each file variant is a test: both statistics, no ``.emd`` statistics,
no accumulated statistics, neither. The chips beside them are small real GeoTIFFs made
here (the real chips are 4000² px); the engine never compares the side files' tile size
with the chips'.

arcgis.learn itself cannot run here (it needs GDAL's Python bindings and shims, see
docs/interop.md, where the real run on our export is recorded), so its reading is
reproduced from its code, cited as file:line of ``arcgis/learn/`` in arcgis 2.4.4.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pix2pix_qgis.chips.esri import pro_json, read_band
from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.manifest import arcgis_learn_entries, foreign_entries
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.contract.errors import Pix2PixError
from pix2pix_qgis.core.progress import Progress
from pix2pix_qgis.data.folder import open_chips
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import Recorder, write_raster

PRO = Path(__file__).parent.parent / "fixtures" / "pro"
PRO33 = PRO / "drawinggui_export_tiles_pro33"  # Export Tiles, Pro 3.3: both statistics
TEMPLATE = PRO / "daremitsu_classified_tiles"  # template .emd, accumulated stats without BandStatsState
TRIAL = PRO / "esri_sample_trial"  # Esri's sample: BandStatsState with Mean/StdDev placeholders
SIDECARS = PRO / "plam_pascal_voc" / "images"  # a JPEG chip with Pro's .aux.xml and .jgw
EMD, ACCUMULATED = "esri_model_definition.emd", "esri_accumulated_stats.json"
TILE = 32
# Pro 3.3 numbers its chips with 12 digits and may skip numbers (NumTiles 12, NextTileIndex 26).
NAMES = [f"{i:012d}.tif" for i in (0, 1, 2, 3, 9, 10)]


def pro_folder(root: Path, emd_from: Path | None, accumulated_from: Path | None, rng: np.random.Generator,
               bands_a: int = 3) -> Path:
    """Chips as Pro 3.3 lays them out (3-band 8-bit input, 1-band UInt16 target) beside real side files."""
    origin = Affine(0.5, 0.0, -7_635_350.97, 0.0, -0.5, 6_027_056.13)
    for index, name in enumerate(NAMES):
        transform = origin * Affine.translation(index * TILE, 0)
        image = rng.integers(0, 256, (bands_a, TILE, TILE), dtype=np.uint8)
        mask = np.zeros((1, TILE, TILE), np.uint16)  # a sparse 0/255 mask, like the real target
        mask[0, :2, :3] = 255
        write_raster(root / "images" / name, image, crs="EPSG:3857", transform=transform)
        write_raster(root / "images2" / name, mask, crs="EPSG:3857", transform=transform)
    for source, name in ((emd_from, EMD), (accumulated_from, ACCUMULATED)):
        if source is not None:
            shutil.copyfile(source / name, root / name)
    shutil.copyfile(PRO33 / "map.txt", root / "map.txt")
    shutil.copyfile(PRO33 / "stats.txt", root / "stats.txt")
    return root


def test_the_fixtures_are_pros_bytes():
    """What the tests below rely on, as Pro wrote it."""
    accumulated = (PRO33 / ACCUMULATED).read_bytes()
    assert accumulated.startswith(b'{\n  "Version" : 1,\n') and not accumulated.endswith(b"\n")
    assert (PRO33 / "map.txt").read_bytes().startswith(b"images\\000000000000.tif images2\\000000000000.tif \r\n")
    emd = json.loads((TEMPLATE / EMD).read_text())
    assert emd["ImageHeight"] == "e.g. 256" and "AllTilesStats" not in emd
    assert json.loads((TEMPLATE / ACCUMULATED).read_text())["OutputFeatures"] is False
    assert (SIDECARS / "000000000.jpg.aux.xml").read_bytes().startswith(b"<PAMDataset>")


def test_band_stats_state_placeholders_are_not_taken_for_moments():
    """Pro writes "Mean" : 0, "StdDev" : 0 in BandStatsState; the moments are M1 and sqrt(M2 / Num)."""
    trial = json.loads((TRIAL / ACCUMULATED).read_text())["BandStatsState"]
    assert trial[0]["Mean"] == 0 and trial[0]["StdDev"] == 0
    band = read_band(trial[0])
    assert band.mean == pytest.approx(114.47626253735012)
    assert band.std == pytest.approx(math.sqrt(23929582567.134109 / 10838016))  # 46.99
    # In Pro's own files sqrt(M2 / Num) is the .emd StdDev of the same band.
    state = json.loads((PRO33 / ACCUMULATED).read_text())["BandStatsState"]
    emd = json.loads((PRO33 / EMD).read_text())["AllTilesStats"]
    for entry, stats in zip(state, emd):
        assert read_band(entry).std == pytest.approx(stats["StdDev"], rel=1e-8)
        assert read_band(entry).mean == pytest.approx(stats["Mean"], rel=1e-12)


def test_both_statistics_normalise_with_pros_min_max_and_the_log_names_the_file(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", PRO33, PRO33, rng)
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.layout == "esri" and chips.tile_size == TILE and (chips.bands_a, chips.bands_b) == (3, 1)
    assert (len(chips.train), len(chips.validation)) == (5, 1)
    assert chips.norm_a.method == chips.norm_b.method == "fixed-range"
    assert chips.norm_a.low == (0.0,) * 3 and chips.norm_a.high == (255.0,) * 3
    # The sparse mask target (mean 2.0, std 21.9 in Pro's numbers) keeps its full [0, 255].
    assert chips.norm_b.low == (0.0,) and chips.norm_b.high == (255.0,)
    assert chips.norm_a.source == f"ArcGIS Pro's Min/Max per band from {EMD} AllTilesStats"
    assert chips.norm_b.source == f"ArcGIS Pro's Min/Max per band from {EMD} AllTilesStats2"
    note_a, note_b = chips.notes
    assert note_a.startswith(f"Normalising the input with ArcGIS Pro's Min/Max per band from {root / EMD} "
                             "AllTilesStats: band 1 [0, 255] (mean 85.0929, std 43.6665)")
    assert note_b.startswith(f"Normalising the target with ArcGIS Pro's Min/Max per band from {root / EMD} "
                             "AllTilesStats2: band 1 [0, 255] (mean 2.00619, std 21.9221)")


def test_without_emd_statistics_the_accumulated_moments_are_used(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", TEMPLATE, PRO33, rng)  # Pro's template .emd: no AllTilesStats
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.norm_a.high == (255.0,) * 3 and chips.norm_b.high == (255.0,)
    assert chips.norm_a.source.endswith(f"{ACCUMULATED} BandStatsState")
    assert chips.norm_b.source.endswith(f"{ACCUMULATED} BandStatsState2")
    # Moments from M1 and sqrt(M2 / Num), not the placeholder zeros.
    assert f"{root / ACCUMULATED} BandStatsState: band 1 [0, 255] (mean 85.0929, std 43.6665)" in chips.notes[0]


def test_without_accumulated_statistics_the_emd_is_used(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", PRO33, TEMPLATE, rng)  # accumulated stats without BandStatsState
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.norm_a.source.endswith(f"{EMD} AllTilesStats") and chips.norm_b.source.endswith("AllTilesStats2")
    # That accumulated file is a Classified Tiles one: said, and the chips are used anyway.
    assert any("MetaDataMode 'Classified_Tiles', not 'Export_Tiles'" in note for note in chips.notes)


def test_without_any_statistics_percentiles_of_the_chips_are_used_and_why_is_said(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", TEMPLATE, TEMPLATE, rng)
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.norm_a.method == "percentile-clip" and chips.norm_a.source is None
    assert 0 <= chips.norm_a.low[0] < 10 and 245 < chips.norm_a.high[0] <= 255  # uniform 8-bit chips
    assert any(f"({EMD} AllTilesStats absent, {ACCUMULATED} BandStatsState absent)" in note for note in chips.notes)
    assert any(note.startswith("The input's 1st–99th percentiles over 5 training chips: band 1 [")
               for note in chips.notes)
    # A 0/255 mask on 0.6 % of the pixels has p01 = p99 = 0: percentiles cannot cover it (Pro's Min/Max can).
    assert chips.norm_b.low == (-0.5,) and chips.norm_b.high == (0.5,)


def test_esris_sample_alone_gives_the_input_from_band_stats_state(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", None, TRIAL, rng)
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.norm_a.high == (255.0, 255.0, 239.0) and chips.norm_a.low == (0.0,) * 3
    assert any(f"{EMD} is missing" in note for note in chips.notes)
    assert any("MetaDataMode 'PASCAL_VOC_rectangles'" in note for note in chips.notes)


def test_statistics_of_another_band_count_are_passed_over_and_said_so(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", PRO33, PRO33, rng, bands_a=1)
    chips = open_chips(root, validation=0.2, seed=0)
    assert chips.norm_a.method == "percentile-clip" and chips.norm_b.method == "fixed-range"
    assert any(f"{EMD} AllTilesStats has 3 band(s) but the chips have 1, {ACCUMULATED} BandStatsState has 3 "
               "band(s) but the chips have 1" in note for note in chips.notes)


def test_a_damaged_side_file_is_named_with_the_fix(tmp_path, rng):
    root = pro_folder(tmp_path / "pro", PRO33, PRO33, rng)
    (root / EMD).write_text('{"AllTilesStats" : [')
    with pytest.raises(Pix2PixError, match=r"esri_model_definition\.emd is not valid JSON.*delete the file"):
        open_chips(root)


def test_the_placeholder_case_trains_a_model_whose_normalisation_covers_the_data(tmp_path, rng):
    """Template .emd + BandStatsState placeholders: the model's ranges hold every chip value."""
    root = pro_folder(tmp_path / "pro", TEMPLATE, PRO33, rng)
    recorder = Recorder()
    config = TrainConfig(epochs=1, ngf=4, ndf=4, batch_size=2, lr=2e-3, validation=0.2, seed=0, device="cpu")
    result = train(root, tmp_path / "pro.p2p", config, recorder)
    card, _ = read_package(result["output"])
    for side, folder in ((card.input, "images"), (card.output, "images2")):
        norm = side.normalization
        for name in NAMES:
            with rasterio.open(root / folder / name) as src:
                data = src.read()
            assert (data.min(axis=(1, 2)) >= np.array(norm.low)).all()
            assert (data.max(axis=(1, 2)) <= np.array(norm.high)).all()
        assert "BandStatsState" in norm.source and norm.method == "fixed-range"
    assert card.training["chips"]["layout"] == "esri"
    infos = [e["message"] for e in recorder.events if e["type"] == "info"]
    assert any(f"Min/Max per band from {root / ACCUMULATED} BandStatsState2: band 1 [0, 255]" in m for m in infos)


def test_pros_side_cars_are_not_chips_and_georeference_the_chip(tmp_path):
    """A real Pro JPEG chip with its .aux.xml (SRS) and .jgw; CRLF map.txt and stats.txt beside."""
    root = tmp_path / "pro"
    for folder in ("images", "images2"):
        shutil.copytree(SIDECARS, root / folder)
    (root / "images2" / "000000000.tfw").write_bytes((PRO33 / "images2" / "000000000002.tfw").read_bytes())
    shutil.copyfile(PRO33 / "map.txt", root / "map.txt")
    chips = open_chips(root, validation=0)
    assert chips.train == ("000000000.jpg",) and chips.tile_size == 448 and (chips.bands_a, chips.bands_b) == (3, 3)
    assert "Mercator_2SP" in chips.grid["crs_wkt"] and chips.grid["cell_size"][0] == pytest.approx(0.0859005782)


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
    shutil.copyfile(PRO33 / EMD, root / EMD)
    chips = open_chips(root, validation=0.25)
    assert (chips.tile_size, chips.bands_a, chips.bands_b, len(chips.train)) == (TILE, 3, 3, 3)
    assert chips.norm_a.high == (255.0, 255.0, 255.0) and "AllTilesStats" in chips.norm_a.source
    assert any("AllTilesStats2 has 1 band(s) but the chips have 3" in note for note in chips.notes)


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


# --- our export, read as arcgis.learn 2.4.4 reads it --------------------------------------------------------------


def export(tmp_path: Path, rng: np.random.Generator, bands_a: int = 3, bands_b: int = 3, tile: int = 256,
           progress: Progress | None = None, **options) -> Path:
    a = rng.integers(0, 256, (bands_a, 768, 1024), dtype=np.uint8)
    b = rng.integers(10, 240, (bands_b, 768, 1024), dtype=np.uint8)
    b[:, 300:310, 300:310] = 255  # the brightest pixels only in a few chips: "all tiles" must include them
    out = tmp_path / "chips"
    export_chips(write_raster(tmp_path / "a.tif", a), write_raster(tmp_path / "b.tif", b), out,
                 ChipSpec(tile_size=tile, stride=tile, validation=0.25, seed=0, **options), progress)
    return out


def keys(value: object) -> object:
    """The key structure of a JSON value: dict keys in order, recursively; the first entry of lists."""
    if isinstance(value, dict):
        return [(k, keys(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return type(value).__name__ if isinstance(value, (bool, str)) else "number"


def test_our_side_files_have_the_keys_and_layout_of_pro_33(tmp_path, rng):
    ours = export(tmp_path, rng, bands_b=1)
    for name in (EMD, ACCUMULATED):
        written = (ours / name).read_bytes()
        assert written.isascii() and written.startswith(b'{\n  "') and not written.endswith(b"\n")
        # Same keys, in the same order, with the same value types, as Pro 3.3's files (3-band input, 1-band target).
        assert keys(json.loads(written)) == keys(json.loads((PRO33 / name).read_bytes()))
    accumulated = json.loads((ours / ACCUMULATED).read_text())
    assert accumulated["Version"] == 1 and accumulated["OutputFeatures"] is True
    assert accumulated["InputRastersProps"] == {"RasterCount": 1, "SensorName": "Undefined", "BandNames": [""] * 3}
    assert accumulated["InputRastersProps2"]["BandNames"] == ["Band_1"]
    lines = (ours / "map.txt").read_bytes().split(b"\r\n")
    assert lines[0] == b"images\\000000000.tif images2\\000000000.tif " and lines[-1] == b""


def arcgis_learn_scaling(chip: np.ndarray, minimum: list[float], maximum: list[float]) -> np.ndarray:
    """``ArcGISMSImage.open(div=(min, max))`` then ``normalize(0.5, 0.5)`` (_utils/common.py:243-318).

    NaN → min (:313), (x − min) / (max − min + 1e-4) (:316), clamped to [0, 1], then (x − 0.5) / 0.5.
    Returned unclamped, so a test sees what the clamp would cut.
    """
    low, high = np.asarray(minimum)[:, None, None], np.asarray(maximum)[:, None, None]
    return ((chip - low) / (high - low + 1e-4) - 0.5) / 0.5


def test_arcgis_learn_reads_our_export_as_a_pix2pix_folder_scaled_by_all_tiles(tmp_path, rng):
    ours = export(tmp_path, rng)
    # _check_esri_files (_data.py:506-513): the three side files must exist.
    assert all((ours / name).is_file() for name in (EMD, "map.txt", ACCUMULATED))
    stats = json.loads((ours / ACCUMULATED).read_text())
    emd = json.loads((ours / EMD).read_text())
    # dataset_type=None reads stats["MetaDataMode"] (_data.py:2069); Export_Tiles + images2/ → Pix2Pix (:2107).
    assert stats["MetaDataMode"] == "Export_Tiles" and (ours / "images2").is_dir()
    # Multispectral check (_data.py:2336-2390): NumBands 3 and band names within red/green/blue/r/g/b/"" → RGB.
    assert stats.get("NumBands") == 3 and "InputRastersProps" in emd
    assert set(emd["InputRastersProps"]["BandNames"]) <= {"red", "green", "blue", "r", "g", "b", ""}
    assert all(s["Min"] >= 0 and s["Max"] <= 255 for s in emd["AllTilesStats"])
    # _batch_stats_json (_data_utils/pix2pix_data.py:165-271): with AllTilesStats2 in the .emd, Min/Max of
    # AllTilesStats (A) and AllTilesStats2 (B) via .get; chips paired by sorted position (:296, :652).
    names = sorted(p.name for p in (ours / "images").glob("*.tif"))
    assert names == sorted(p.name for p in (ours / "images2").glob("*.tif"))
    chips = json.loads((ours / "chips.json").read_text())["chips"]
    assert {c["split"] for c in chips} == {"train", "validation"}  # arcgis.learn draws its own split
    for folder, key in (("images", "AllTilesStats"), ("images2", "AllTilesStats2")):
        minimum = [s.get("Min") for s in emd[key]]
        maximum = [s.get("Max") for s in emd[key]]
        assert maximum[0] == 255  # the bright block, in a few chips only
        for name in names:  # every chip, training or validation: nothing is clamped
            with rasterio.open(ours / folder / name) as src:
                scaled = arcgis_learn_scaling(src.read().astype(np.float64), minimum, maximum)
            assert scaled.min() >= -1.0 and scaled.max() <= 1.0
    # merge_emd_and_stats (_data.py:985-1123, several folders) reads these keys hard:
    assert "MetaDataMode" in emd and "NumBands" in stats and "FeatureStats" in stats
    for entry in stats["BandStatsState"]:
        assert all(isinstance(entry[k], (int, float)) for k in ("M1", "M2", "Num", "Min", "Max"))


def test_the_esri_statistics_cover_every_exported_chip(tmp_path, rng):
    ours = export(tmp_path, rng)
    manifest = json.loads((ours / "chips.json").read_text())
    state = json.loads((ours / ACCUMULATED).read_text())["BandStatsState2"]
    pixels = np.concatenate([rasterio.open(ours / "images2" / c["name"]).read().reshape(3, -1)
                             for c in manifest["chips"]], axis=1).astype(np.float64)
    for band, entry in enumerate(state):
        assert entry["Num"] == pixels.shape[1] == len(manifest["chips"]) * 256 * 256
        assert entry["M1"] == pytest.approx(pixels[band].mean(), rel=1e-9)
        assert entry["M2"] == pytest.approx(((pixels[band] - pixels[band].mean()) ** 2).sum(), rel=1e-9)
        assert (entry["Min"], entry["Max"]) == (pixels[band].min(), pixels[band].max())
    # chips.json keeps the training chips' statistics (our own normalisation): a narrower set.
    assert manifest["b"]["statistics"][0]["count"] < state[0]["Num"]


@pytest.mark.parametrize("tile, bands_b, expected", [
    (128, 3, "Tile size 128 is not a multiple of 256: arcgis.learn's prepare_data loads these chips, but its "
             "Pix2Pix(data) stops with 'Image chip sizes should be in multiples of 256'. Use a tile size of 256"),
    (256, 1, "The input has 3 band(s) and the target 1: arcgis.learn repeats the last band of the target until it "
             "has the input's 3, and its Pix2Pix then predicts 3 bands (copies of one band)."),
])
def test_what_arcgis_learn_would_do_differently_is_warned_or_refused(tmp_path, rng, tile, bands_b, expected):
    recorder = Recorder()
    export(tmp_path, rng, bands_b=bands_b, tile=tile, progress=recorder)
    assert any(expected in e["message"] for e in recorder.events if e["type"] == "warning")
    with pytest.raises(Pix2PixError, match="ESRI_COMPATIBLE is set") as error:
        export(tmp_path / "strict", rng, bands_b=bands_b, tile=tile, esri_compatible=True)
    assert expected in str(error.value) and not (tmp_path / "strict" / "chips").exists()
    export(tmp_path / "fine", rng, esri_compatible=True)  # 256 px, 3 → 3 bands: accepted silently


def test_a_re_export_keeps_what_arcgis_learn_saved_in_the_folder(tmp_path, rng):
    """arcgis.learn 2.4.4's fit(1) on our export left exactly these three entries in the folder
    (measured, see docs/interop.md): models/ and esri_normalization_stats_{a,b}.json."""
    ours = export(tmp_path, rng)
    (ours / "models" / "my_model").mkdir(parents=True)
    (ours / "models" / "my_model" / "my_model.pth").write_bytes(b"weights")
    (ours / "esri_normalization_stats_a.json").write_text('{"batch_stats_for_norm_pct_100": {}}')
    (ours / "esri_normalization_stats_b.json").write_text('{"batch_stats_for_norm_pct_100": {}}')
    inode = (ours / "models" / "my_model" / "my_model.pth").stat().st_ino
    old_chips = len(list((ours / "images").iterdir()))
    recorder = Recorder()
    export_chips(tmp_path / "a.tif", tmp_path / "b.tif", ours, ChipSpec(tile_size=512, stride=512, validation=0),
                 recorder)
    assert len(list((ours / "images").iterdir())) == 2 < old_chips  # the export's own files are replaced
    assert (ours / "models" / "my_model" / "my_model.pth").read_bytes() == b"weights"
    assert (ours / "models" / "my_model" / "my_model.pth").stat().st_ino == inode  # linked, not copied
    assert (ours / "esri_normalization_stats_a.json").read_text() == '{"batch_stats_for_norm_pct_100": {}}'
    assert (ours / "esri_normalization_stats_b.json").read_text() == '{"batch_stats_for_norm_pct_100": {}}'
    assert any("Kept what arcgis.learn saved in the previous export's folder: esri_normalization_stats_a.json, "
               "esri_normalization_stats_b.json, models/." in e["message"] for e in recorder.events)
    # A failing re-export leaves the folder as it was.
    with pytest.raises(Pix2PixError):
        export_chips(tmp_path / "a.tif", tmp_path / "b.tif", ours, ChipSpec(tile_size=1024, validation=0))
    assert (ours / "models" / "my_model" / "my_model.pth").read_bytes() == b"weights"
    assert len(list((ours / "images").iterdir())) == 2
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name]
    assert os.listdir(ours / "models") == ["my_model"]


def test_only_arcgis_learns_own_names_and_kinds_count_as_arcgis_learns(tmp_path):
    """A look-alike (a models file, a symlinked models/, another stats name) is the user's, so it is refused."""
    (tmp_path / "chips.json").write_text("{}")
    (tmp_path / "esri_normalization_stats.json").write_text("{}")
    (tmp_path / "esri_normalization_stats_b.json").write_text("{}")
    (tmp_path / "esri_normalization_stats_c.json").write_text("{}")  # not a name arcgis.learn's Pix2Pix writes
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "models").symlink_to(tmp_path / "elsewhere")
    assert arcgis_learn_entries(tmp_path) == ["esri_normalization_stats.json", "esri_normalization_stats_b.json"]
    assert foreign_entries(tmp_path) == ["elsewhere/", "esri_normalization_stats_c.json", "models/"]
    (tmp_path / "models").unlink()
    (tmp_path / "models").write_text("a file")
    assert "models" in foreign_entries(tmp_path) and "models" not in arcgis_learn_entries(tmp_path)


def test_our_export_without_its_manifest_is_read_through_its_esri_files(tmp_path, rng):
    ours = export(tmp_path, rng)
    (ours / "chips.json").unlink()
    chips = open_chips(ours, validation=0.25, seed=0)
    assert chips.layout == "esri" and chips.tile_size == 256 and (chips.bands_a, chips.bands_b) == (3, 3)
    emd = json.loads((ours / EMD).read_text())
    assert chips.norm_b.low == tuple(float(s["Min"]) for s in emd["AllTilesStats2"])
    assert chips.norm_b.high == (255.0, 255.0, 255.0)
    assert pro_json({"a": [1]}) == '{\n  "a" : [\n    1\n  ]\n}'
