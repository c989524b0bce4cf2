"""Whole-raster translation: exact grids, nodata, odd sizes, determinism, write schedule, seams."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from pix2pix_qgis import Cancelled, Pix2PixError, Progress
from pix2pix_qgis.data.normalization import Normalization
from pix2pix_qgis.infer.backends import TorchBackend, cpu_batch
from pix2pix_qgis.infer.tiling import BLOCK, TilePlan
from pix2pix_qgis.infer.translate import (
    Tiling,
    TranslateSpec,
    _lookup_table,
    _Translator,
    default_tiling,
    translate_raster,
)
from pix2pix_qgis.model.device import cpu_supports_bfloat16
from pix2pix_qgis.model.package import load_model
from pix2pix_qgis.sample import basemap_file, write_window

from ..builders import UTM_TRANSFORM, smooth_image, write_raster
from ..cli_runs import cli_process
from ..models import write_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "rgb.p2p")


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:4326", Affine(1 / 15, 0, -20, 0, -1 / 15, 60)),
        ("EPSG:32633", UTM_TRANSFORM),
        ("EPSG:32633", Affine(10.0, 0, 500_000, 0, -30.0, 5_000_000)),  # non-square pixels
    ],
)
def test_output_has_the_input_grid_exactly(model, tmp_path, rng, crs, transform):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 150, 170), crs=crs, transform=transform)
    result = translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(overlap=16))
    with rasterio.open(source) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert (out.width, out.height, out.count) == (170, 150, 3) and out.dtypes[0] == "uint8"
        assert out.block_shapes[0] == (BLOCK, BLOCK) or out.height < BLOCK
    # Default tile: a multiple of the chip (64 px), here one tile covering the raster.
    assert result["tile_size"] == 192 and result["overlap"] == 16
    assert result["width"] == 170 and result["tiles"] == len(TilePlan.build(150, 170, 192, 16)) == 1


def test_extent_window_output_and_dtype_override(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 200, 200))
    x0, y0 = UTM_TRANSFORM @ (30, 150)
    x1, y1 = UTM_TRANSFORM @ (130, 20)
    translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(extent=(x0, y0, x1, y1), dtype="float32"))
    with rasterio.open(tmp_path / "out.tif") as out:
        assert (out.width, out.height) == (100, 130) and out.dtypes[0] == "float32"
        assert out.transform == UTM_TRANSFORM * Affine.translation(30, 20)


@pytest.mark.parametrize(("height", "width"), [(37, 1000), (20, 30), (1, 1), (64, 64)])
def test_odd_sizes_and_rasters_smaller_than_a_tile(model, tmp_path, rng, height, width):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, height, width), dtype="uint8"))
    translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(overlap=16))
    with rasterio.open(tmp_path / "out.tif") as out:
        data = out.read()
    assert data.shape == (3, height, width)
    assert data.std() > 0 or height * width == 1  # real predictions, not an empty file


def test_nodata_is_carried_to_the_output_and_all_nodata_tiles_are_skipped(tmp_path, rng):
    model = write_model(tmp_path / "nodata.p2p", out_nodata=0)
    image = smooth_image(rng, 3, 200, 200)
    image[:, :100, :100] = 255  # an all-nodata corner larger than a tile
    image[:, 150, 150] = 255
    source = write_raster(tmp_path / "in.tif", image, nodata=255)
    result = translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(tile_size=64, overlap=16))
    assert result["skipped_nodata_tiles"] >= 1
    with rasterio.open(tmp_path / "out.tif") as out:
        data, nodata = out.read(), out.nodata
    assert nodata == 0
    invalid = (image == 255).all(axis=0)
    assert (data[:, invalid] == 0).all()
    assert (data[:, ~invalid] != 0).all()  # a valid prediction never reads as nodata


def test_input_without_nodata_value_gets_an_internal_mask(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.random((3, 80, 80), dtype="float32") * 255)
    with rasterio.open(source, "r+") as dst:
        mask = np.full((80, 80), 255, np.uint8)
        mask[10:20, 30:70] = 0
        dst.write_mask(mask)
    translate_raster(source, model, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as out:
        np.testing.assert_array_equal(out.read_masks(1), mask)


@pytest.mark.parametrize("batch_sizes", [(1, 3, 8)])
def test_same_output_bit_for_bit_whatever_the_batch_size(model, tmp_path, rng, batch_sizes):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 150, 190))
    outputs = []
    for batch in batch_sizes:
        translate_raster(source, model, tmp_path / f"o{batch}.tif",
                         TranslateSpec(batch_size=batch, dtype="float32", overlap=16))
        with rasterio.open(tmp_path / f"o{batch}.tif") as out:
            outputs.append(out.read())
    for other in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], other)


def test_real_imagery_is_identical_bit_for_bit_across_runs_and_batch_sizes(tmp_path):
    # A window of the Blue Marble relief: a real GeoTIFF (deflate, 256 px blocks, EPSG:4326).
    # 900×700 px: the default tiling's aligned tiles pass the right and bottom edges (padded).
    source = write_window(basemap_file("etopo1.jpg"), tmp_path / "relief.tif", Window(2400, 450, 900, 700))
    model_path = write_model(tmp_path / "m.p2p", depth=4, ngf=8, chip=64, out_nodata=0)
    outputs = []
    for run, batch in enumerate((4, 4, 1, 7)):  # two runs at the default, then two other batch sizes
        out = tmp_path / f"out{run}.tif"
        result = translate_raster(source, model_path, out, TranslateSpec(batch_size=batch))
        with rasterio.open(source) as src, rasterio.open(out) as dst:
            assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
            assert dst.nodata == 0 and dst.dtypes == ("uint8",) * 3 and dst.count == 3
            outputs.append(dst.read())
        assert result["precision"] == "float32" and result["tile_align"] > 1
        assert result["tiles"] > cpu_batch(result["tile_size"], result["tiles"])  # several calls, the last padded
    assert outputs[0].std() > 0
    for other in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], other)


@pytest.mark.parametrize(("precision", "problem"), [("float16", "runs only on a CUDA GPU"),
                                                     ("bfloat16", "bfloat16 instructions")])
def test_reduced_precision_the_cpu_cannot_run_is_refused_with_the_fix(model, tmp_path, rng, precision, problem):
    if precision == "bfloat16" and cpu_supports_bfloat16():
        pytest.skip("this CPU runs bfloat16")
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 64, 64))
    proc = cli_process("translate", str(source), str(model), str(tmp_path / "out.tif"), "--device", "cpu",
                       "--precision", precision, "--progress", "json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    error = json.loads(proc.stdout.splitlines()[-1])
    assert error["type"] == "error" and problem in error["message"] and "float32" in error["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


class RecordingBackend:
    """The real torch backend, recording how many tiles each call carries."""

    def __init__(self, backend: TorchBackend) -> None:
        self.backend, self.batch, self.calls = backend, backend.batch, []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        return self.backend(batch)


def test_narrow_rasters_fill_batches_across_tile_rows(tmp_path, rng):
    model_path = write_model(tmp_path / "m.p2p", depth=3, ngf=4, chip=32)
    height = 600
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, height, 40))  # two tiles per tile row
    generator, card = load_model(model_path)
    plan = TilePlan.build(height, 40, 32, 8)
    torch_backend = TorchBackend(generator, card, generator_device(generator), False, 1, 32, tiles=len(plan))
    backend = RecordingBackend(torch_backend)
    with rasterio.open(source) as src:
        _Translator(plan, src, [1, 2, 3], Window(0, 0, 40, height), card.input.normalization, backend,
                    RecordingWriter(), 3, Progress()).run()
    assert backend.batch == 16 and sum(backend.calls) == len(plan)
    assert all(calls == backend.batch for calls in backend.calls[:-1])  # full batches, only the last one short


class RecordingWriter:
    """Stands in for the GeoTIFF writer to record which output rows are handed over, and when."""

    def __init__(self) -> None:
        self.bands: list[tuple[int, int]] = []

    def submit(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        assert valid.shape == values.shape[1:] and valid.all()  # the source has no invalid pixel
        self.bands.append((row, row + values.shape[1]))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 700), st.integers(1, 90), st.sampled_from([16, 32, 64]), st.data())
def test_every_output_row_is_written_once_in_whole_blocks(tmp_path_factory, height, width, tile, data):
    overlap = data.draw(st.integers(0, tile // 2))
    folder = tmp_path_factory.mktemp("prop")
    model_path = write_model(folder / "m.p2p", in_bands=1, out_bands=1, depth=3, ngf=2, chip=tile)
    source = write_raster(folder / "in.tif", np.arange(height * width, dtype="float32").reshape(1, height, width))
    generator, card = load_model(model_path)
    writer = RecordingWriter()
    plan = TilePlan.build(height, width, tile, overlap)
    with rasterio.open(source) as src:
        counters = _Translator(plan, src, [1], Window(0, 0, width, height), card.input.normalization,
                               TorchBackend(generator, card, generator_device(generator), False, 4, tile), writer,
                               1, Progress()).run()
    assert counters.tiles == len(plan)
    assert writer.bands[0][0] == 0 and writer.bands[-1][1] == height
    for (_, stop), (next_start, _) in zip(writer.bands, writer.bands[1:]):
        assert stop == next_start  # contiguous, no row twice
    for start, stop in writer.bands:
        assert start % BLOCK == 0 and (stop % BLOCK == 0 or stop == height)  # block-aligned


def generator_device(generator):
    return next(generator.parameters()).device


def seam_ratio(image: np.ndarray, seams: list[int]) -> float:
    """Mean |horizontal gradient| across the given columns over the mean elsewhere."""
    gradient = np.abs(np.diff(image.astype(np.float64), axis=-1)).mean(axis=(0, 1))
    at = np.array([gradient[c - 1] for c in seams])
    mask = np.ones_like(gradient, dtype=bool)
    for c in seams:
        mask[max(0, c - 3): c + 2] = False
    return float(at.mean() / gradient[mask].mean())


def test_blending_hides_seams_and_matches_a_single_pass(tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", chip=256, depth=5)
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 256, 256))
    translate_raster(source, model, tmp_path / "single.tif", TranslateSpec(tile_size=256, dtype="float32"))
    with rasterio.open(tmp_path / "single.tif") as single:
        reference = single.read().astype(np.float64)
    scores = {}
    for name, blend, overlap in (("default", "hann", 32), ("plain tiles", "crop", 0)):
        out = tmp_path / f"{blend}{overlap}.tif"
        translate_raster(source, model, out, TranslateSpec(tile_size=64, overlap=overlap, blend=blend,
                                                            dtype="float32"))
        with rasterio.open(out) as tiled:
            error = tiled.read() - reference
        cuts = [start + overlap // 2 for start in TilePlan.build(256, 256, 64, overlap).cols.starts[1:]]
        psnr = 10 * np.log10(255**2 / np.mean(error**2))
        scores[name] = (psnr, seam_ratio(error, cuts))
    # Blended tiles equal the single pass closely, and their difference has no step at tile
    # boundaries; plain tiles (what broken blending looks like) fail both.
    assert scores["default"][0] > 70 and scores["default"][1] < 2.0
    assert scores["plain tiles"][0] < scores["default"][0] - 10 and scores["plain tiles"][1] > 3.0


def test_band_count_mismatch_names_both(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (2, 64, 64), dtype="uint8"))
    with pytest.raises(Pix2PixError, match=r"The model takes 3 input band\(s\) .* but the raster has 2"):
        translate_raster(source, model, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
    wide = write_raster(tmp_path / "wide.tif", rng.integers(0, 255, (5, 64, 64), dtype="uint8"))
    translate_raster(wide, model, tmp_path / "picked.tif", TranslateSpec(bands=(5, 3, 1)))
    assert (tmp_path / "picked.tif").exists()


def test_cancel_leaves_no_output(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 300, 300), dtype="uint8"))
    progress = Progress()
    progress._callback = lambda event: event["type"] == "progress" and progress.cancel_event.set()
    with pytest.raises(Cancelled):
        translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(overlap=16), progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_cog_output_is_cloud_optimized(model, tmp_path, rng):
    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 300, 300))
    translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(cog=True))
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert out.transform == UTM_TRANSFORM and out.shape == (300, 300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_tta_averages_the_dihedral_views_so_output_follows_flips_of_the_input(model, tmp_path, rng):
    image = smooth_image(rng, 3, 64, 64)  # exactly one tile: no padding, no blending
    flipped = np.ascontiguousarray(image[:, :, ::-1])
    outputs = {}
    for name, data in (("plain", image), ("flipped", flipped)):
        source = write_raster(tmp_path / f"{name}.tif", data)
        for tta in (False, True):
            out = tmp_path / f"{name}{tta}.tif"
            translate_raster(source, model, out, TranslateSpec(tile_size=64, tta=tta, dtype="float32"))
            outputs[name, tta] = rasterio.open(out).read()
    # Averaged over the 8 views, the model becomes flip-equivariant; alone, it is not.
    np.testing.assert_allclose(outputs["flipped", True], outputs["plain", True][:, :, ::-1], atol=1e-3)
    assert np.abs(outputs["flipped", False] - outputs["plain", False][:, :, ::-1]).max() > 0.5


def test_creation_options_reach_gdal(model, tmp_path, rng):
    from pix2pix_qgis.infer.translate import parse_creation_options

    source = write_raster(tmp_path / "in.tif", smooth_image(rng, 3, 64, 64))
    options = parse_creation_options(["COMPRESS=LZW", "blockxsize=128"])
    translate_raster(source, model, tmp_path / "out.tif", TranslateSpec(creation_options=options))
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.compression.name == "lzw"
    with pytest.raises(Pix2PixError, match="KEY=VALUE"):
        parse_creation_options(["COMPRESS"])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_integer_inputs_are_normalised_by_table_to_the_same_bits(dtype, rng):
    norm = Normalization((3.0, -100.0), (200.0, 900.0))
    info = np.iinfo(dtype)
    data = rng.integers(info.min, info.max + 1, (2, 50, 60)).astype(dtype)
    translator = _Translator.__new__(_Translator)  # only its normalisation is exercised
    translator.input_norm, translator.lookup = norm, _lookup_table(norm, dtype, 2)
    assert translator.lookup is not None and np.array_equal(translator._normalise(data), norm.apply(data))
    assert _lookup_table(norm, "float32", 2) is None


@pytest.fixture(scope="module")
def model_card_of(tmp_path_factory):
    """The card of a tiny model with a given chip and depth (its weights do not matter to the tiling)."""
    folder = tmp_path_factory.mktemp("tiling-models")
    return lambda chip, depth: load_model(write_model(folder / f"{chip}-{depth}.p2p", depth=depth, ngf=1,
                                                      chip=chip))[1]


@pytest.mark.parametrize(("chip", "depth"), [(64, 6), (128, 7), (256, 8)])
def test_default_tiling_is_on_the_stride_lattice_and_computes_each_pixel_at_most_1_3_times(model_card_of, chip,
                                                                                           depth):
    card = model_card_of(chip, depth)
    for height, width in ((2048, 2048), (4096, 4096), (16384, 16384), (1024, 16384)):
        tiling = default_tiling(card, None, None, height, width)
        plan = TilePlan.build(height, width, tiling.tile, tiling.overlap, align=tiling.align)
        assert tiling.tile % chip == 0 and tiling.tile <= 1024 and tiling.align == min(2 ** (depth - 1), 64)
        assert all(start % tiling.align == 0 for start in plan.rows.starts + plan.cols.starts)
        assert plan.compute_factor <= 1.3
        # A given tile size keeps the evenly spread plan and a quarter chip of overlap.
        assert default_tiling(card, chip, None, height, width) == Tiling(chip, chip // 4, 1)
