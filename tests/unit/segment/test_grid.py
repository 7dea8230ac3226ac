"""Label volumes read onto their tomogram's grid (sxtflow.segment.read_labels_on_grid)."""

import numpy as np
import pytest
import tifffile

from sxtflow.io import InputError, Volume, read_volume, write_volume
from sxtflow.segment import read_labels_on_grid


def test_a_default_voxel_size_fills_only_a_file_without_one(tmp_path):
    data = np.zeros((4, 5, 6), np.uint8)
    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, data, photometric="minisblack")
    vol = read_volume(tif, default_voxel_nm=30.0)
    assert vol.voxel_nm == (30.0, 30.0, 30.0) and vol.meta["voxel_source"] == "default"
    mrc = tmp_path / "a.mrc"
    write_volume(mrc, Volume(data, (40.0, 40.0, 40.0)))
    vol = read_volume(mrc, default_voxel_nm=30.0)  # the header wins over a default
    assert vol.voxel_nm == (40.0, 40.0, 40.0) and vol.meta["voxel_source"] == "header"


def test_labels_without_a_voxel_size_lie_on_the_tomograms_grid(tmp_path):
    ann = np.zeros((4, 5, 6), np.uint8)
    ann[1, 2, 3] = 2
    tif = tmp_path / "ann.tif"
    tifffile.imwrite(tif, ann, photometric="minisblack")
    out = read_labels_on_grid(tif, (4, 5, 6), (30.0, 30.0, 30.0))
    assert out.dtype == np.uint8 and np.array_equal(out, ann)
    with pytest.raises(InputError, match=r"annotation shape \(4, 5, 6\) differs"):
        read_labels_on_grid(tif, (4, 5, 7), (30.0, 30.0, 30.0))


def test_labels_of_another_voxel_size_or_not_integers_are_refused(tmp_path):
    mrc = tmp_path / "truth.mrc"
    write_volume(mrc, Volume(np.zeros((4, 5, 6), np.uint8), (40.0, 40.0, 40.0)))
    with pytest.raises(InputError, match="truth voxel size .* differs") as err:
        read_labels_on_grid(mrc, (4, 5, 6), (30.0, 30.0, 30.0), what="truth")
    assert str(mrc) in str(err.value)
    tif = tmp_path / "f.tif"
    tifffile.imwrite(tif, np.full((4, 5, 6), 1.5, np.float32), photometric="minisblack")
    with pytest.raises(InputError, match="non-integer"):
        read_labels_on_grid(tif, (4, 5, 6), (30.0, 30.0, 30.0))


def test_labels_on_the_original_grid_follow_a_resampled_tomogram(tmp_path):
    ann = np.zeros((8, 8, 8), np.uint8)
    ann[2:6, 2:6, 2:6] = 3
    tif = tmp_path / "ann.tif"
    tifffile.imwrite(
        tif, ann, photometric="minisblack"
    )  # no voxel size: its shape is the original tomogram's
    source = {"shape": [8, 8, 8], "voxel_nm": [20.0, 20.0, 20.0]}
    out = read_labels_on_grid(tif, (4, 4, 4), (40.0, 40.0, 40.0), source=source)
    assert out.shape == (4, 4, 4) and out[2, 2, 2] == 3
