"""Per-object work in bounding boxes (issue 14): the cropped computations of measure and
mesh give what the whole-volume ones give."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage

from sxtflow.io import Volume
from sxtflow.plot import decimate_for_display
from sxtflow.quantify import class_meshes, instances, mask_mesh
from sxtflow.quantify._measure import _cell_mask, _moments
from sxtflow.quantify._mesh import CONNECTIVITY_26, _class_boxes, _signed_volume


def blobs(shape=(30, 34, 38), seed=0):
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    lab[3:27, 4:30, 5:33] = 2  # "cytoplasm"
    noise = ndimage.gaussian_filter(rng.normal(size=shape), 2)
    lab[(noise > 0.08) & (lab == 2)] = 4
    lab[(noise < -0.1) & (lab == 2)] = 8
    lab[10:13, 20:23, 8:11] = 0  # a hole
    return lab


def test_class_boxes_are_the_bounding_boxes_of_each_value():
    lab = blobs()
    boxes = _class_boxes(lab)
    assert sorted(boxes) == [2, 4, 8]
    for v, box in boxes.items():
        idx = np.nonzero(lab == v)
        assert box == tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    assert _class_boxes(np.zeros((3, 3, 3), np.uint8)) == {}
    assert sorted(_class_boxes(lab.astype(np.int64) - 1)) == [1, 3, 7]  # negative values


def test_moments_equal_those_of_all_coordinates():
    lab = blobs()
    mask = lab == 4
    spacing = np.array([0.03, 0.02, 0.025])
    start = (5, 7, 11)
    n, centroid, cov = _moments(mask, start, spacing)
    coords = (np.argwhere(mask) + start) * spacing
    d = coords - coords.mean(axis=0)
    assert n == mask.sum()
    np.testing.assert_allclose(centroid, coords.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, d.T @ d / n, rtol=1e-9, atol=1e-15)


def test_instances_in_boxes_equal_whole_volume_components():
    lab = blobs()
    inst, table = instances(lab, {"cytoplasm": 2, "nucleus": 4, "mito": 8})
    for name, value in (("cytoplasm", 2), ("nucleus", 4), ("mito", 8)):
        want, n = ndimage.label(lab == value, structure=CONNECTIVITY_26)
        ids = table.loc[table["class"] == name, "object_id"].to_numpy()
        assert len(ids) == n
        got = np.where(np.isin(inst, ids), inst - ids.min() + 1, 0)
        np.testing.assert_array_equal(got, want)


def test_separated_instances_in_a_box_equal_the_whole_volume_ones():
    from sxtflow.segment import separate_instances

    lab = np.zeros((30, 40, 40), np.uint8)
    zz, yy, xx = np.mgrid[:30, :40, :40]
    for cy, cx in ((18, 14), (18, 23)):  # two touching balls, far from the origin
        lab[(zz - 15) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 3
    inst, table = instances(lab, {"droplet": 3}, spacing_um=(0.05,) * 3, separate={"droplet": 0.1})
    want = separate_instances(lab == 3, (0.05,) * 3, min_radius_um=0.1)
    assert len(table) == want.max() == 2
    np.testing.assert_array_equal(inst, want)


def test_cell_mask_in_its_box_fills_holes_and_keeps_the_largest_piece():
    lab = blobs()
    lab[0:2, 0:2, 0:2] = 2  # a speck apart from the cell
    cell = _cell_mask(lab, [2, 4, 8])
    union = np.isin(lab, [2, 4, 8])
    comps, _ = ndimage.label(union, structure=CONNECTIVITY_26)
    sizes = np.bincount(comps.ravel())
    sizes[0] = 0
    want = ndimage.binary_fill_holes(comps == np.argmax(sizes))
    np.testing.assert_array_equal(cell, want)
    assert cell[11, 21, 9] and not cell[0, 0, 0]


def test_signed_volume_and_class_meshes_placed_back():
    ball = np.zeros((20, 22, 24), bool)
    zz, yy, xx = np.mgrid[:20, :22, :24]
    ball[(zz - 12) ** 2 + (yy - 13) ** 2 + (xx - 15) ** 2 <= 16] = True
    m = mask_mesh(ball, 0.05)
    assert np.isclose(_signed_volume(m.vertices, m.faces), m.volume)
    assert _signed_volume(m.vertices, m.faces[:, ::-1]) < 0
    got = class_meshes(Volume(ball.astype(np.uint8) * 4, 50.0), {"nucleus": 4})["nucleus"]
    np.testing.assert_allclose(got.vertices, m.vertices, atol=1e-12)
    np.testing.assert_array_equal(got.faces, m.faces)


def test_decimation_clusters_vertices():
    m = trimesh.creation.icosphere(subdivisions=4)
    small = decimate_for_display(m, 500)
    assert 0 < len(small.faces) <= 500
    assert np.linalg.norm(small.vertices, axis=1).max() <= 1.0 + 1e-9


def test_given_class_boxes_give_the_same_meshes_and_slice_panel(tmp_path):
    # run_mesh finds the class boxes once and hands them to both
    from sxtflow.plot import slice_panel

    lab = blobs(seed=1)
    classes = {"cytoplasm": 2, "nucleus": 4, "lipid_droplet": 8}
    vol = Volume(lab, 50.0)
    boxes = _class_boxes(lab)
    want = class_meshes(vol, classes)
    got = class_meshes(vol, classes, class_boxes=boxes)
    assert set(got) == set(want) == set(classes)
    for name in want:
        np.testing.assert_array_equal(got[name].vertices, want[name].vertices)
        np.testing.assert_array_equal(got[name].faces, want[name].faces)
    lac = Volume(np.random.default_rng(2).normal(0.2, 0.02, lab.shape).astype(np.float32), 50.0)
    colours = {2: "#808080", 4: "#3060c0", 8: "#e0c020"}
    slice_panel(lac, vol, colours, tmp_path / "a.png")
    slice_panel(lac, vol, colours, tmp_path / "b.png", class_boxes=boxes)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
