"""Closed outlines filled before training (segment.fill_outlines, train(fill_outlines=...))."""

from __future__ import annotations

import numpy as np
import pytest

from sxtflow.segment import FeatureSpec, compute_features, fill_outlines, train


def ring(shape, centre, radius):
    """A 1-voxel, 8-connected circle outline in a 2-D array of ``shape`` (bool)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    disk = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    inner = np.zeros_like(disk)
    inner[1:-1, 1:-1] = disk[1:-1, 1:-1] & disk[:-2, 1:-1] & disk[2:, 1:-1]
    inner[1:-1, 1:-1] &= disk[1:-1, :-2] & disk[1:-1, 2:]
    return disk & ~inner, inner


def put(vol, axis, index, plane):
    """``vol`` with the 2-D ``plane`` (bool) written at ``index`` along ``axis`` (value 3)."""
    sl = [slice(None)] * 3
    sl[axis] = index
    vol[tuple(sl)][plane] = 3
    return vol


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_closed_ring_filled_on_each_axis(axis):
    outline, inside = ring((20, 20), (10, 9), 6)
    ann = put(np.zeros((20, 20, 20), np.uint8), axis, 7, outline)
    filled, counts = fill_outlines(ann)
    want = put(ann.copy(), axis, 7, inside)
    assert np.array_equal(filled, want)
    assert counts == {3: int(inside.sum())} and inside.sum() > 50
    assert filled.dtype == ann.dtype
    assert np.array_equal(ann, put(np.zeros_like(ann), axis, 7, outline))  # input untouched


def test_open_arc_and_strokes_stay_strokes():
    outline, _ = ring((20, 20), (10, 10), 6)
    arc = outline.copy()
    arc[10:, :] = False  # half the circle: open
    ann = np.zeros((5, 20, 20), np.uint8)
    ann[1][arc] = 3
    ann[3, 5:15, 8] = 2  # a straight stroke
    ann[3, 5:15, 12] = 2  # and a parallel one: open at both ends
    filled, counts = fill_outlines(ann)
    assert np.array_equal(filled, ann) and counts == {}


def test_other_class_inside_is_kept_and_blocks_the_fill():
    outline, inside = ring((24, 24), (12, 12), 8)
    ann = np.zeros((3, 24, 24), np.uint8)
    ann[1][outline] = 2  # the cell's outline ...
    small, small_in = ring((24, 24), (12, 12), 3)
    ann[1][small] = 4  # ... around a nucleus outline
    ann[1, 12, 6] = 5  # and another class's stroke between them
    filled, counts = fill_outlines(ann)
    # the nucleus (nothing annotated inside) is filled; the cell's inside holds other
    # annotations, so it is left as it is; no stroke is overwritten
    assert counts == {4: int(small_in.sum())}
    assert (filled[1][small_in] == 4).all()
    assert (
        filled[1][inside & ~small & ~small_in]
        == np.where(ann[1] == 5, 5, 0)[inside & ~small & ~small_in]
    ).all()
    assert (filled[ann != 0] == ann[ann != 0]).all()


def test_crossing_outlines_of_one_class_and_a_stroke_inside():
    outline, inside = ring((20, 20), (10, 10), 6)
    ann = put(np.zeros((20, 20, 20), np.uint8), 0, 10, outline)  # outlined on z = 10
    ann = put(ann, 2, 10, outline)  # and on x = 10: the rings cross
    ann[10, 9:12, 7] = 3  # a stroke of the same class inside: still filled around it
    filled, counts = fill_outlines(ann)
    want = put(put(ann.copy(), 0, 10, inside), 2, 10, inside)
    assert np.array_equal(filled, want)
    assert counts == {3: int((want != ann).sum())}


def test_fill_refuses_a_non_volume():
    with pytest.raises(ValueError, match="z, y, x"):
        fill_outlines(np.zeros((4, 4), np.uint8))


def test_train_fills_outlines_and_records_them():
    z, y, x = np.mgrid[:24, :24, :24]
    ball = (z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 < 7**2
    lac = np.where(ball, 0.5, 0.1).astype(np.float32)
    lac += np.random.default_rng(0).normal(0, 0.02, lac.shape).astype(np.float32)
    ann = np.zeros(lac.shape, np.uint8)
    for k in (9, 12, 15):  # the ball outlined on 3 z-slices, ice painted outside it
        sl = ball[k]
        edge = sl & ~(
            np.roll(sl, 1, 0) & np.roll(sl, -1, 0) & np.roll(sl, 1, 1) & np.roll(sl, -1, 1)
        )
        ann[k][edge] = 2
        ann[k, 1:4, 1:20] = 1
    spec = FeatureSpec(sigmas=(1.0,))
    feats = compute_features(lac, spec)
    classes = {"ice": 1, "cytoplasm": 2}
    _, on = train([(feats, ann)], classes, spec=spec, n_estimators=5, cv_folds=0)
    _, off = train(
        [(feats, ann)], classes, spec=spec, n_estimators=5, cv_folds=0, fill_outlines=False
    )
    inside = int(sum((ball[k] & (ann[k] == 0)).sum() for k in (9, 12, 15)))
    assert on["fill_outlines"] is True and on["filled_voxels"] == {"ice": 0, "cytoplasm": inside}
    assert on["n_training_voxels"]["cytoplasm"] == off["n_training_voxels"]["cytoplasm"] + inside
    assert off["fill_outlines"] is False and off["filled_voxels"] == {}
