import numpy as np
import pytest

from sxtflow.refine import refine_labels

CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "vacuole": 7, "lipid_droplet": 8}
SP = (0.1, 0.1, 0.1)  # µm: one voxel = 0.001 µm³


def cell():
    lab = np.full((30, 30, 30), 2, np.uint8)
    lab[:, :, :2] = 1
    lab[5:15, 5:15, 5:15] = 4  # nucleus, 1 µm³
    return lab


def test_specks_below_min_volume_take_the_surrounding_label():
    lab = cell()
    lab[20:22, 20:22, 20:22] = 7  # 8 voxels = 0.008 µm³
    lab[24:28, 20:24, 20:24] = 7  # 64 voxels = 0.064 µm³
    out = refine_labels(lab, CLASSES, SP, {"vacuole": {"min_volume_um3": 0.02}})
    assert (out[20:22, 20:22, 20:22] == 2).all()
    assert (out[24:28, 20:24, 20:24] == 7).all()
    assert (out[5:15, 5:15, 5:15] == 4).all()


def test_max_objects_keeps_the_largest_and_fill_holes():
    lab = cell()
    lab[20:23, 20:23, 20:23] = 4  # a second, smaller "nucleus"
    lab[9:11, 9:11, 9:11] = 8  # a hole of another class inside the nucleus
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"max_objects": 1, "fill_holes": True}})
    assert (out[20:23, 20:23, 20:23] == 2).all()
    assert (out[5:15, 5:15, 5:15] == 4).all()
    assert out.dtype == np.uint8 and lab[9, 9, 9] == 8  # input untouched


def test_rules_for_absent_classes_are_ignored_and_bad_keys_refused():
    lab = cell()
    np.testing.assert_array_equal(refine_labels(lab, CLASSES, SP, {"mitochondrion": {}}), lab)
    with pytest.raises(ValueError, match="unknown refine keys for 'nucleus'"):
        refine_labels(lab, CLASSES, SP, {"nucleus": {"min_size": 3}})


def test_no_data_voxels_stay_zero():
    lab = cell()
    lab[0] = 0
    lab[1, 0, 0] = 4
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"max_objects": 1}})
    assert (out[0] == 0).all() and out[1, 0, 0] != 4


def test_piece_mostly_inside_another_class_joins_it():
    lab = cell()
    lab[8:11, 5:8, 8:11] = 9  # a dense crescent at the nucleus' edge, read as mitochondrion
    lab[20:23, 20:23, 20:23] = 9  # a real mitochondrion in the cytoplasm
    classes = {**CLASSES, "mitochondrion": 9}
    out = refine_labels(lab, classes, SP, {"mitochondrion": {"inside": "nucleus"}})
    assert (out[8:11, 5:8, 8:11] == 4).all()
    assert (out[20:23, 20:23, 20:23] == 9).all()


def _balls(centres, r, shape=(24, 24, 48)):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    m = np.zeros(shape, bool)
    for cz, cy, cx in centres:
        m |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    return m


def test_separate_instances_splits_touching_balls_only():
    from sxtflow.refine import separate_instances

    sp = (0.05, 0.05, 0.05)
    two = _balls([(12, 12, 12), (12, 12, 27)], 8)  # overlapping by 1 voxel: one component
    assert separate_instances(two, sp).max() == 1
    inst = separate_instances(two, sp, min_radius_um=0.25)
    assert inst.max() == 2
    sizes = np.bincount(inst.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) <= 0.05 * sizes.mean()  # split in the middle
    assert inst[12, 12, 12] != inst[12, 12, 27]
    one = _balls([(12, 12, 20)], 8)
    assert separate_instances(one, sp, min_radius_um=0.25).max() == 1
    # a speck is dropped by volume (1 voxel = 1.25e-4 µm³), objects numbered 1..n
    speck = one.copy()
    speck[0, 0, 0] = True
    assert separate_instances(speck, sp).max() == 2
    kept = separate_instances(speck, sp, min_volume_um3=0.01)
    assert kept.max() == 1 and kept[0, 0, 0] == 0


def test_separate_instances_bad_input():
    from sxtflow.refine import separate_instances

    with pytest.raises(ValueError, match="3D"):
        separate_instances(np.ones((4, 4), bool), (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="spacing_um"):
        separate_instances(np.ones((4, 4, 4), bool), (0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="min_radius_um"):
        separate_instances(np.ones((4, 4, 4), bool), (0.1, 0.1, 0.1), min_radius_um=-1)


def test_smooth_radius_removes_spurs_thinner_than_the_ball_in_microns():
    z, y, x = np.mgrid[:30, :30, :30]
    lab = np.full((30, 30, 30), 2, np.uint8)
    lab[:, :, :2] = 1
    body = (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 8**2  # r = 0.8 µm
    lab[body] = 4
    spur = np.zeros_like(body)
    spur[14:17, 22:28, 14:17] = True  # 0.3 µm wide, 0.5 µm long
    spur &= ~body
    lab[spur] = 4
    lab[15, 2:7, 15] = 4  # a one-voxel strand
    rule = {"nucleus": {"smooth_radius_um": 0.2}}  # a ball 0.4 µm across
    out = refine_labels(lab, CLASSES, SP, rule)
    assert (out[spur] == 4).mean() < 0.3 and (out[14:17, 25:28, 14:17] == 2).all()
    assert (out[15, 2:6, 15] == 2).all()  # removed pieces take the surrounding label
    assert (out[body] == 4).mean() > 0.95  # the round body stays (but for digital bumps)
    assert (out[:, :, :2] == 1).all() and lab[15, 24, 15] == 4  # ice untouched, input too
    # a smaller ball (the voxel and its 6 neighbours) fits into the spur: its core stays
    kept = refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0.1}})
    assert (kept[15, 22:27, 15] == 4).all() and (kept[spur] == 4).mean() > 0.5
    # anisotropic voxels: 0.2 µm spans 2 voxels along z but 8 along y and x, so the spur,
    # now 0.3 µm thick in z but 0.075 µm in x, is thinner than the ball and goes
    aniso = refine_labels(lab, CLASSES, (0.1, 0.025, 0.025), rule)
    assert (aniso[spur] == 4).mean() < 0.3
    np.testing.assert_array_equal(
        refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0}}), lab
    )
    with pytest.raises(ValueError, match="smooth_radius_um"):
        refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": -1}})


def test_smooth_radius_keeps_label_zero_and_drops_objects_thinner_than_the_ball():
    lab = cell()
    lab[:, 28:, :] = 0  # no data
    lab[20:22, 20:22, 20:22] = 7  # a vacuole 0.2 µm wide: narrower than a 0.3 µm ball
    out = refine_labels(lab, CLASSES, SP, {"vacuole": {"smooth_radius_um": 0.15}})
    assert not (out == 7).any() and (out[20:22, 20:22, 20:22] == 2).all()
    lab[5:15, 20:27, 5:15] = 4  # nucleus up to one voxel before the no-data slab
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0.3}})
    assert (out[:, 28:, :] == 0).all()


def test_rules_in_the_class_box_at_the_volume_border():
    """Per-class work runs in the class's bounding box: a class touching the volume border
    keeps a pocket open to the border, fills its enclosed hole, and its specks far from the
    rest of the class (another corner of the box) still go."""
    lab = np.full((12, 14, 16), 2, np.uint8)
    lab[0:6, 0:7, 0:8] = 4  # a nucleus in the corner of the volume
    lab[0, 2:4, 2:4] = 2  # a pocket open to the volume border: not a hole
    lab[3, 3, 3] = 2  # an enclosed hole: filled
    lab[11, 13, 15] = 4  # a speck at the opposite corner
    out = refine_labels(
        lab, {"cytoplasm": 2, "nucleus": 4}, (0.1, 0.1, 0.1),
        {"nucleus": {"min_volume_um3": 0.01, "fill_holes": True}},
    )  # fmt: skip
    assert (out[0, 2:4, 2:4] == 2).all()
    assert out[3, 3, 3] == 4
    assert out[11, 13, 15] == 2
    assert (out == 4).sum() == 6 * 7 * 8 - 4
