"""Tile plan properties over random raster sizes, tile sizes and overlaps (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.infer.tiling import TilePlan, plan_axis


@st.composite
def axis_cases(draw):
    tile = draw(st.sampled_from([8, 16, 32, 64, 256]))
    overlap = draw(st.integers(0, tile // 2))
    length = draw(st.integers(1, 5 * tile))
    return length, tile, overlap


def coverage(plan) -> np.ndarray:
    total = np.zeros(plan.length)
    for i in range(len(plan.starts)):
        start, stop = plan.span(i)
        total[start:stop] += plan.weights[i, : stop - start]
    return total


@settings(max_examples=300, deadline=None)
@given(axis_cases(), st.sampled_from(["hann", "crop"]))
def test_every_pixel_is_covered_and_weights_sum_to_one(case, blend):
    length, tile, overlap = case
    plan = plan_axis(length, tile, overlap, blend=blend)
    np.testing.assert_allclose(coverage(plan), 1.0, rtol=0, atol=1e-12)
    assert np.all(plan.weights >= 0)


@settings(max_examples=300, deadline=None)
@given(axis_cases())
def test_windows_stay_within_the_raster_and_the_ends_are_flat(case):
    length, tile, overlap = case
    plan = plan_axis(length, tile, overlap)
    assert plan.starts[0] == 0
    if length >= tile:
        assert all(0 <= s and s + tile <= length for s in plan.starts)
        assert plan.starts[-1] + tile == length
        assert all(b - a <= tile - overlap for a, b in zip(plan.starts, plan.starts[1:]))
    else:
        assert plan.starts == (0,) and np.all(plan.weights[0, length:] == 0)
    # Sides touching the raster border are not faded: full weight up to the border.
    first_stop = plan.span(0)[1]
    margin_free = min(first_stop, plan.starts[1]) if len(plan.starts) > 1 else first_stop
    np.testing.assert_array_equal(plan.weights[0, :margin_free], 1.0)
    last_start, last_stop = plan.span(len(plan.starts) - 1)
    previous_stop = plan.span(len(plan.starts) - 2)[1] if len(plan.starts) > 1 else last_start
    tail = plan.weights[-1, previous_stop - last_start: last_stop - last_start]
    np.testing.assert_array_equal(tail, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from([16, 32, 64]), st.data())
def test_2d_weights_sum_to_one_over_any_raster(height, width, tile, data):
    overlap = data.draw(st.integers(0, tile // 2))
    plan = TilePlan.build(height, width, tile, overlap)
    total = np.zeros((height, width))
    for i, j, window in plan.windows():
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = min(r0 + tile, height), min(c0 + tile, width)
        assert 0 <= r0 < height and 0 <= c0 < width
        total[r0:r1, c0:c1] += plan.weight(i, j)[: r1 - r0, : c1 - c0]
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_margin_is_discarded_and_overlap_is_a_hann_cross_fade():
    plan = plan_axis(448, 256, 64, margin=16)  # two tiles: [0, 256) and [192, 448)
    assert plan.starts == (0, 192)
    left, right = plan.weights
    np.testing.assert_array_equal(left[:208], 1.0)  # up to the neighbour's margin
    np.testing.assert_array_equal(left[240:], 0.0)  # own outer margin discarded
    np.testing.assert_array_equal(right[:16], 0.0)
    ramp = right[16:48]
    assert np.all(np.diff(ramp) > 0) and ramp[0] > 0 and ramp[-1] < 1
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0)  # raised cosine is symmetric
    np.testing.assert_allclose(left[208:240] + right[16:48], 1.0)


def test_crop_mode_assigns_each_pixel_to_one_tile():
    plan = plan_axis(448, 256, 64, blend="crop")
    assert set(np.unique(plan.weights)) == {0.0, 1.0}


def test_compute_factor_reports_overlap_cost():
    assert TilePlan.build(512, 512, 256, 0).compute_factor == 1.0
    assert TilePlan.build(448, 448, 256, 64).compute_factor == pytest.approx((2 * 256 / 448) ** 2)


@pytest.mark.parametrize(("overlap", "blend"), [(-1, "hann"), (256, "hann"), (8, "gaussian")])
def test_bad_options_are_explained(overlap, blend):
    with pytest.raises(Pix2PixError):
        plan_axis(1000, 256, overlap, blend=blend)


@settings(max_examples=300, deadline=None)
@given(axis_cases(), st.sampled_from([2, 8, 32]), st.sampled_from(["hann", "crop"]))
def test_aligned_starts_sit_on_the_lattice_keep_the_overlap_and_cover_every_pixel(case, align, blend):
    length, tile, overlap = case
    align = min(align, tile)  # translate aligns to 2^depth, which divides the tile
    plan = plan_axis(length, tile, overlap, blend=blend, align=align)
    if tile - overlap >= align:  # else no step on the lattice keeps the overlap: spread evenly
        assert all(start % align == 0 for start in plan.starts) and plan.starts[0] == 0
        assert plan.starts[-1] + tile >= length and plan.starts[-1] < max(length - tile, 0) + align
    else:
        assert plan.starts == plan_axis(length, tile, overlap, blend=blend).starts
    assert all(tile - (b - a) >= overlap for a, b in zip(plan.starts, plan.starts[1:]))
    np.testing.assert_allclose(coverage(plan), 1.0, atol=1e-12)
    assert not plan.weights[-1, max(0, length - plan.starts[-1]):].any()  # nothing beyond the raster


def test_alignment_one_is_the_evenly_spread_plan():
    assert plan_axis(1000, 256, 64, align=1).starts == plan_axis(1000, 256, 64).starts == (0, 186, 372, 558, 744)
    assert plan_axis(1000, 256, 64, align=64).starts == (0, 192, 384, 576, 768)  # the last passes the end by 24
    with pytest.raises(Pix2PixError, match="alignment"):
        plan_axis(1000, 256, 64, align=0)
