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
