"""Tests for sxtflow.resample: anti-aliased volumes, labels by their largest share."""

import numpy as np
import pytest
from skimage.transform import resize

from sxtflow.io import Volume
from sxtflow.resample import resample_labels, resample_volume, resampled_shape


def test_shape_and_voxel_size_are_exact():
    assert resampled_shape((48, 50, 51), 25.0, 50.0) == (24, 25, 25)
    assert resampled_shape((10, 10, 10), (20, 10, 10), 30.0) == (6, 3, 3)
    r = resample_volume(Volume(np.zeros((10, 12, 14), np.float32), (20.0, 10.0, 10.0)), 30.0)
    assert r.voxel_nm == (30.0, 30.0, 30.0) and r.data.shape == (6, 4, 4)


def test_downsampling_does_not_alias_fine_detail():
    # a pattern of period 2 voxels (the fine grid's Nyquist) shrunk by 3: naive sampling of every
    # third voxel turns it into a full-contrast pattern of period 6 voxels (aliasing)
    x = np.arange(60)
    data = np.broadcast_to(np.where(x % 2, 0.2, 0.4), (6, 6, 60)).astype(np.float32)
    naive = data[..., 1::3]
    assert np.ptp(naive) == pytest.approx(0.2)
    out = resample_volume(Volume(data, 10.0), (10.0, 10.0, 30.0)).data
    assert np.ptp(out[..., 1:-1]) < 0.01 and out.mean() == pytest.approx(0.3, abs=1e-3)


def test_agrees_with_scikit_image_resize_on_smooth_data():
    rng = np.random.default_rng(0)
    from scipy import ndimage

    data = ndimage.gaussian_filter(rng.normal(0, 1, (32, 32, 32)), 3).astype(np.float32)
    ours = resample_volume(Volume(data, 25.0), 50.0).data
    ref = resize(data, (16, 16, 16), order=1, anti_aliasing=True, mode="edge")
    inner = (slice(2, -2),) * 3
    assert np.abs(ours[inner] - ref[inner]).max() < 0.05 * np.ptp(data)


def test_label_volumes_keep_their_objects():
    z, y, x = np.mgrid[:40, :40, :40] - 19.5
    lab = np.where(np.sqrt(z**2 + y**2 + x**2) < 12, 2, 1).astype(np.uint8)
    out = resample_labels(lab, 25.0, 50.0)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {1, 2}
    # volume of the ball preserved to a few % (8 fine voxels per coarse voxel)
    assert (out == 2).sum() * 8 == pytest.approx((lab == 2).sum(), rel=0.05)
    up = resample_labels(out, 50.0, 25.0)
    assert up.shape == lab.shape and np.mean(up == lab) > 0.97


def test_sparse_annotations_keep_thin_strokes():
    ann = np.zeros((20, 20, 20), np.uint8)
    ann[10, 4:16, 8] = 2  # a one-voxel stroke
    ann[10, 4:16, 12] = 1
    dense = resample_labels(ann, 20.0, 40.0)
    sparse = resample_labels(ann, 20.0, 40.0, sparse=True)
    assert not dense.any()  # 0 covers most of each coarse voxel
    assert (sparse == 2).sum() == 6 and (sparse == 1).sum() == 6
