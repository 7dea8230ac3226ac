"""Closed outlines filled before training (segment.fill_outlines, train(fill_outlines=...))."""

from __future__ import annotations

import numpy as np
import pytest

from sxtflow.segment import BlockFeatures, FeatureSpec, compute_features, fill_outlines, train


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


def cell_phantom(noise=0.01):
    """A cell (ball r 16, cytoplasm 0.25 µm⁻¹) holding a nucleus (ball r 5, 0.28) and a
    lipid droplet (ball r 3, 0.65) in ice (0.11): ``(lac, truth)``, truth values ice 1,
    cytoplasm 2, nucleus 4, droplet 8."""
    z, y, x = np.mgrid[:17, :40, :40]
    cell = (z - 8) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 16**2
    nucleus = (z - 10) ** 2 + (y - 18) ** 2 + (x - 12) ** 2 <= 5**2
    droplet = (z - 8) ** 2 + (y - 22) ** 2 + (x - 28) ** 2 <= 3**2
    truth = np.select([droplet, nucleus, cell], [8, 4, 2], 1).astype(np.uint8)
    lac = np.choose(np.searchsorted([1, 2, 4, 8], truth), [0.11, 0.25, 0.28, 0.65])
    lac = lac + np.random.default_rng(3).normal(0, noise, lac.shape)
    return lac.astype(np.float32), truth


def outline_of(mask2d):
    """The 1-voxel inner outline of a 2-D mask (8-connected)."""
    from scipy import ndimage as ndi

    return mask2d & ~ndi.binary_erosion(mask2d, border_value=1)


def test_cell_outline_holding_other_classes_leaves_them_out():
    lac, truth = cell_phantom()
    ann = np.zeros(truth.shape, np.uint8)
    ann[8][outline_of(truth[8] > 1)] = 2  # the cell traced as cytoplasm on z = 8 ...
    ann[10][outline_of(truth[10] == 4)] = 4  # ... the nucleus outlined on z = 10 only
    filled, counts = fill_outlines(ann, lac)
    new = filled != ann
    # everything filled is its true class: neither the droplet (never annotated, told
    # apart by its LAC) nor the nucleus (annotated 2 slices away) is taught as cytoplasm
    assert (filled[new] == truth[new]).all()
    assert (filled[8][truth[8] == 8] == 0).all() and (filled[8][truth[8] == 4] == 0).all()
    assert counts[2] > 0.6 * (truth[8] == 2).sum()  # most of the cytoplasm still filled
    assert (filled[10][truth[10] == 4] == 4).all()  # the nucleus outline: filled whole
    # without the tomogram the nucleus is still left out, the droplet is not
    blind, _ = fill_outlines(ann)
    assert (blind[8][truth[8] == 4] == 0).all()
    assert (blind[8][truth[8] == 8] == 2).all()


def test_outline_holding_no_other_class_is_filled_whole():
    lac, truth = cell_phantom()
    ann = np.zeros(truth.shape, np.uint8)
    ann[8][outline_of(truth[8] == 8)] = 8  # a droplet outlined on its own ...
    ann[8, 1:3, 10:30] = 1  # ... ice painted outside the cell
    filled, counts = fill_outlines(ann, lac)
    inner = (truth[8] == 8) & (ann[8] == 0)
    assert counts == {8: int(inner.sum())} and (filled[8][inner] == 8).all()
    # a class set without organelles (cell vs ice): the cell's whole inside is the class
    ann = np.zeros(truth.shape, np.uint8)
    ann[8][outline_of(truth[8] > 1)] = 2
    ann[8, 1:3, 10:30] = 1
    filled, counts = fill_outlines(ann, lac)
    assert counts == {2: int(((truth[8] > 1) & (ann[8] == 0)).sum())}


def test_another_class_crossing_the_outline_blocks_its_fill():
    lac, truth = cell_phantom()
    ann = np.zeros(truth.shape, np.uint8)
    ann[8][outline_of(truth[8] > 1)] = 2  # the cell on z = 8
    ann[:, :, 12][outline_of(truth[:, :, 12] == 4)] = 4  # the nucleus on x = 12 crosses it
    filled, counts = fill_outlines(ann, lac)
    assert counts == {4: int(((truth[:, :, 12] == 4) & (ann[:, :, 12] == 0)).sum())}
    assert (filled[:, :, 12][truth[:, :, 12] == 4] == 4).all()


def test_train_compares_with_the_smoothed_tomogram():
    lac, truth = cell_phantom()
    ann = np.zeros(truth.shape, np.uint8)
    ann[8][outline_of(truth[8] > 1)] = 2
    ann[10][outline_of(truth[10] == 4)] = 4
    ann[8, 1:3, 10:30] = 1
    ann[7, 21:24, 27:30] = 8  # a stroke in the droplet, a slice away
    spec = FeatureSpec(sigmas=(0.7, 3.0), families=("gaussian",))
    feats = compute_features(lac, spec)
    classes = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "lipid_droplet": 8}
    lazy = BlockFeatures(lac, spec, (4, 16, 16))  # read box by box, as the napari loop does
    _, card = train([(lazy, ann)], classes, spec=spec, n_estimators=3, cv_folds=0)
    _, want = fill_outlines(ann, feats[1])  # the σ = 0.7 channel, nearest 1 voxel
    assert card["filled_voxels"]["cytoplasm"] == want[2]
    _, blind = fill_outlines(ann)
    assert want[2] < blind[2]  # the droplet was left out through the features
