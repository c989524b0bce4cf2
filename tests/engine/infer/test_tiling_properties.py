"""Property tests of the streaming translation over random raster sizes, tile sizes and overlaps.

``test_tiling.py`` checks the plan alone (coverage, weights, bounds). Here the plan runs
through the real translator (reader, accumulator, block hand-off) with an identity
"model", so the properties are those of the whole mosaic: the output equals the input
(every pixel covered, weights sum to one, each tile placed at its window), and the rows
handed to the writer are whole 256-row GeoTIFF blocks, each written exactly once.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.io import MemoryFile
from rasterio.windows import Window

from pix2pix_qgis.core.progress import Progress
from pix2pix_qgis.infer.tiling import BLOCK, TilePlan
from pix2pix_qgis.infer.translate import _Translator

from ..builders import UTM_TRANSFORM


class Identity:
    """Stands in for the model: the tile's first band, unchanged (float32), three tiles per call."""

    batch = 3  # tiles the translator gathers per call: batches span tile rows of narrow rasters

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch[:, :1].astype(np.float32)


class AsFloat:
    def apply(self, data: np.ndarray) -> np.ndarray:
        return data.astype(np.float32)


class RecordingWriter:
    def __init__(self) -> None:
        self.writes: list[tuple[int, np.ndarray]] = []

    def submit(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        assert valid.all()
        self.writes.append((row, values))


@st.composite
def cases(draw):
    tile = draw(st.sampled_from([8, 16, 32, 64]))
    overlap = draw(st.integers(0, tile // 2))
    height = draw(st.integers(1, 3 * BLOCK + 40))
    width = draw(st.integers(1, 70))
    blend = draw(st.sampled_from(["hann", "crop"]))
    seed = draw(st.integers(0, 2**16))
    return height, width, tile, overlap, blend, seed


@settings(max_examples=80, deadline=None)
@given(cases())
def test_the_mosaic_reproduces_the_input_and_writes_each_block_once(case):
    height, width, tile, overlap, blend, seed = case
    data = np.random.default_rng(seed).random((1, height, width), dtype=np.float32) * 100
    plan = TilePlan.build(height, width, tile, overlap, blend=blend)
    for _, _, window in plan.windows():  # windows start inside the raster (a small raster is padded)
        assert 0 <= window.row_off < height and 0 <= window.col_off < width
    writer = RecordingWriter()
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:32633",
                         transform=UTM_TRANSFORM) as dst:
            dst.write(data)
        with memory.open() as src:
            counters = _Translator(plan, src, [1], Window(0, 0, width, height), AsFloat(), Identity(), writer,
                                   out_bands=1, progress=Progress()).run()
    assert counters.tiles == len(plan) and counters.skipped == 0

    rows = [row for row, _ in writer.writes]
    ends = [row + values.shape[1] for row, values in writer.writes]
    assert rows[0] == 0 and ends[-1] == height and rows[1:] == ends[:-1]  # contiguous, disjoint, complete
    assert all(row % BLOCK == 0 for row in rows)  # every write starts a block...
    assert all(end % BLOCK == 0 for end in ends[:-1])  # ...and ends one, so no block is written twice
    mosaic = np.concatenate([values for _, values in writer.writes], axis=1)
    np.testing.assert_allclose(mosaic, data, rtol=1e-5, atol=1e-3)
