"""Tests for sxtflow.segment.dice_iou."""

import numpy as np
import pytest

from sxtflow.segment import dice_iou

CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "vacuole": 7}


def test_identical_is_one():
    rng = np.random.default_rng(1)
    lab = rng.choice([1, 2, 4], size=(8, 9, 10)).astype(np.uint8)
    df = dice_iou(lab, lab, CLASSES).set_index("class")
    assert list(df.index) == ["ice", "cytoplasm", "nucleus", "vacuole", "cell"]
    np.testing.assert_allclose(df.loc[["ice", "cytoplasm", "nucleus", "cell"], "dice"], 1.0)
    np.testing.assert_allclose(df.loc[["ice", "cytoplasm", "nucleus", "cell"], "iou"], 1.0)
    assert np.isnan(df.loc["vacuole", "dice"]) and np.isnan(df.loc["vacuole", "iou"])
    assert df.loc["vacuole", "n_truth_voxels"] == 0
    assert df.loc["cell", "n_truth_voxels"] == np.isin(lab, [2, 4]).sum()


def test_disjoint_is_zero():
    truth = np.zeros((4, 4, 4), np.uint8)
    pred = np.zeros_like(truth)
    truth[:2] = 4
    pred[2:] = 4
    df = dice_iou(pred, truth, {"nucleus": 4}).set_index("class")
    assert df.loc["nucleus", "dice"] == 0 and df.loc["nucleus", "iou"] == 0
    assert "cell" not in df.index  # no ice class: no cell row


def test_offset_cubes_exact():
    truth = np.full((20, 20, 20), 1, np.uint8)
    pred = truth.copy()
    truth[2:12, 2:12, 2:12] = 4  # 10³ = 1000
    pred[5:15, 2:12, 2:12] = 4  # shifted 3 along z: overlap 7·10·10 = 700
    df = dice_iou(pred, truth, CLASSES).set_index("class")
    assert df.loc["nucleus", "dice"] == pytest.approx(2 * 700 / 2000)
    assert df.loc["nucleus", "iou"] == pytest.approx(700 / 1300)
    assert df.loc["nucleus", "n_truth_voxels"] == 1000
    assert df.loc["nucleus", "n_pred_voxels"] == 1000
    assert df.loc["cell", "dice"] == pytest.approx(0.7)
    ice_t, ice_p, ice_i = 8000 - 1000, 8000 - 1000, 8000 - 1300
    assert df.loc["ice", "dice"] == pytest.approx(2 * ice_i / (ice_t + ice_p))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(2, 3, 5\)"):
        dice_iou(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)), CLASSES)
