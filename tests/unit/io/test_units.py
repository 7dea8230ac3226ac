"""Units are never guessed: a volume without a voxel size needs the sample sheet's voxel_nm."""

import logging

import mrcfile
import numpy as np
import pytest
import tifffile

from sxtflow.io import InputError, Volume, read_volume, write_amira, write_volume


def unitless_amira(path, data, bbox=(0, 31, 0, 31, 0, 31)):
    """An AmiraMesh float lattice whose BoundingBox has no Units (as AREC3D/Amira write)."""
    nz, ny, nx = data.shape
    head = (
        f"# AmiraMesh BINARY-LITTLE-ENDIAN 2.1\n\ndefine Lattice {nx} {ny} {nz}\n\n"
        f"Parameters {{\n    BoundingBox {' '.join(map(str, bbox))},\n"
        '    CoordType "uniform"\n}\n\nLattice { float Data } @1\n\n@1\n'
    )
    path.write_bytes(head.encode() + data.astype("<f4").tobytes() + b"\n")
    return path


def test_unitless_amira_needs_the_sheet_voxel_size(tmp_path):
    # today's code read this as 1000 nm voxels (µm assumed) without a word
    path = unitless_amira(tmp_path / "cell.rec", np.ones((32, 32, 32), np.float32))
    with pytest.raises(InputError) as err:
        read_volume(path)
    assert str(path) in str(err.value) and "voxel_nm column" in str(err.value)
    assert "no Units" in str(err.value)
    vol = read_volume(path, voxel_nm=32.0)
    assert vol.voxel_nm == (32.0, 32.0, 32.0)
    assert vol.meta["amira_bbox_unitless"] == [1.0, 1.0, 1.0]
    assert vol.meta["voxel_source"] == "sample sheet"


@pytest.mark.parametrize("angstrom", [0.0, 1.0])
def test_mrc_with_unset_voxel_size_needs_the_sheet(tmp_path, angstrom):
    path = tmp_path / "tomo.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((4, 5, 6), np.float32))
        mrc.voxel_size = angstrom
    with pytest.raises(InputError, match=rf"voxel size is {angstrom:g} Å \(unset\).*voxel_nm"):
        read_volume(path)
    assert read_volume(path, voxel_nm=25.0).voxel_nm == (25.0, 25.0, 25.0)


def test_tiff_needs_the_sheet(tmp_path):
    path = tmp_path / "tomo.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.float32), photometric="minisblack")
    with pytest.raises(InputError, match=r"TIFF file carries no voxel size.*voxel_nm column"):
        read_volume(path)


def test_sheet_wins_over_header_with_a_warning_above_one_percent(tmp_path, caplog):
    path = write_volume(tmp_path / "t.mrc", Volume(np.zeros((4, 4, 4), np.float32), 30.0))
    with caplog.at_level(logging.WARNING, logger="sxtflow"):
        vol = read_volume(path, voxel_nm=30.2)  # 0.7 %: silent
    assert vol.voxel_nm == (30.2, 30.2, 30.2) and not caplog.records
    with caplog.at_level(logging.WARNING, logger="sxtflow"):
        vol = read_volume(path, voxel_nm=25.0)
    assert vol.voxel_nm == (25.0, 25.0, 25.0)
    assert vol.meta["voxel_nm_header"] == pytest.approx([30.0] * 3)
    assert "differs by more than 1 %" in caplog.text and str(path) in caplog.text


def test_amira_with_units_keeps_its_size(tmp_path):
    path = write_amira(tmp_path / "v.am", Volume(np.zeros((3, 4, 5), np.float32), (40, 30, 20)))
    assert read_volume(path).voxel_nm == pytest.approx((40.0, 30.0, 20.0))


def test_projection_stack_with_1_angstrom_needs_the_sheet(tmp_path, caplog):
    from sxtflow.io import read_projections

    path = tmp_path / "tilt.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.full((3, 4, 5), 0.5, np.float32))
        mrc.voxel_size = 1.0
    (tmp_path / "tilt.tlt").write_text("-1\n0\n1\n")
    assert read_projections(path).pixel_nm is None
    with mrcfile.open(path, mode="r+") as mrc:
        mrc.voxel_size = 300.0  # 30 nm
    with caplog.at_level(logging.WARNING, logger="sxtflow"):
        proj = read_projections(path, pixel_nm=40.0)
    assert proj.pixel_nm == 40.0 and proj.meta["pixel_nm_header"] == pytest.approx(30.0)
    assert "differs by more than 1 %" in caplog.text
