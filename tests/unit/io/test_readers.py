"""Readers of real-world formats: NeXus NXtomo, MRC/TIFF stacks with angle files, AmiraMesh.

Every fixture file is written here (no downloads), in the layout the format documents.
"""

from __future__ import annotations

import zlib

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile

from sxtflow.io import (
    InputError,
    Volume,
    read_amira,
    read_angles,
    read_projections,
    read_volume,
    write_amira,
)

RNG = np.random.default_rng(3)
SHAPE = (2, 6)  # detector rows, cols


def _counts(n):
    return (1000 + 100 * RNG.random((n, *SHAPE))).astype(np.float32)


# --------------------------------------------------------------------------- NXtomo


def write_nxtomo(path, *, detector_path=True, n=5, angles_deg=None, flat_shape=SHAPE, units=None):
    key = np.array([2, 1, 1] + [0] * n + [1], dtype=np.uint8)  # dark, 2 flats, n proj, flat
    frames = np.empty((key.size, *SHAPE), np.float32)
    frames[key == 2] = 10
    frames[key == 1] = 2000
    proj = _counts(n)
    frames[key == 0] = proj
    angles = np.zeros(key.size)
    angles[key == 0] = np.linspace(-60, 60, n) if angles_deg is None else angles_deg
    with h5py.File(path, "w") as fh:
        e = fh.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        e["definition"] = "NXtomo"
        grp = "instrument/detector" if detector_path else "data"
        e[f"{grp}/data"] = frames
        e[f"{grp}/image_key"] = key
        if flat_shape != SHAPE:
            del e[f"{grp}/data"]
            e[f"{grp}/data"] = np.ones((key.size, *flat_shape), np.float32)
        ra = e.create_dataset("sample/rotation_angle", data=angles)
        if units:
            ra.attrs["units"] = units
        px = e.create_dataset("instrument/detector/x_pixel_size", data=10e-9)
        px.attrs["units"] = "m"
    return proj, np.deg2rad(angles[key == 0])


@pytest.mark.parametrize("detector_path", [True, False])
def test_nxtomo_splits_projections_flats_darks(tmp_path, detector_path):
    proj, theta = write_nxtomo(tmp_path / "t.nxs", detector_path=detector_path)
    p = read_projections(tmp_path / "t.nxs")
    np.testing.assert_array_equal(p.data, proj)
    np.testing.assert_allclose(p.theta, theta)
    assert p.flats.shape == (3, *SHAPE) and p.darks.shape == (1, *SHAPE)
    assert np.all(p.flats == 2000) and np.all(p.darks == 10)
    assert p.pixel_nm == pytest.approx(10.0)
    assert p.meta["format"] == "nxtomo"
    # two flats before the 5 projections, one after: their place in acquisition order
    assert p.meta["flat_positions"] == [-0.5, -0.5, 4.5]


def test_nxtomo_radians_and_bad_angle_count(tmp_path):
    _, theta = write_nxtomo(tmp_path / "r.h5", angles_deg=np.linspace(-1, 1, 5), units="rad")
    np.testing.assert_allclose(read_projections(tmp_path / "r.h5").theta, np.rad2deg(theta))
    write_nxtomo(tmp_path / "b.h5")
    with h5py.File(tmp_path / "b.h5", "r+") as fh:
        del fh["entry/sample/rotation_angle"]
        fh["entry/sample/rotation_angle"] = np.zeros(4)
    with pytest.raises(InputError, match=r"b\.h5: 4 rotation angles for 9 frames"):
        read_projections(tmp_path / "b.h5")


def test_hdf5_without_known_layout(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        fh["stuff"] = np.zeros(3)
    with pytest.raises(InputError, match="neither Data Exchange.*nor NeXus"):
        read_projections(tmp_path / "x.h5")


def test_truncated_hdf5_is_a_clear_error(tmp_path):
    write_nxtomo(tmp_path / "t.h5")
    raw = (tmp_path / "t.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(InputError, match=r"t\.h5: cannot read HDF5"):
        read_projections(tmp_path / "t.h5")


# --------------------------------------------------------------------------- stacks + angles


def write_mrc_stack(path, data, pixel_a=100.0):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data.astype(np.float32))
        mrc.voxel_size = pixel_a


def test_mrc_stack_with_tlt(tmp_path):
    data = RNG.random((4, *SHAPE)).astype(np.float32) * 0.9 + 0.05  # transmission
    write_mrc_stack(tmp_path / "series.st", data)
    (tmp_path / "series.tlt").write_text("-60.0\n -20\n20.00\n# comment\n60\n\n")
    p = read_projections(tmp_path / "series.st")
    np.testing.assert_allclose(p.data, data)
    np.testing.assert_allclose(p.theta, np.deg2rad([-60, -20, 20, 60]))
    assert p.pixel_nm == pytest.approx(10.0) and p.meta["normalized"] is True
    assert p.flats is None


def test_mrc_stack_rawtlt_fallback_and_mismatch(tmp_path):
    write_mrc_stack(tmp_path / "s.mrc", _counts(3))
    with pytest.raises(InputError, match=r"s\.mrc: no angle file.*s\.tlt"):
        read_projections(tmp_path / "s.mrc")
    (tmp_path / "s.rawtlt").write_text("0\n45\n")
    with pytest.raises(InputError, match=r"2 angles in s\.rawtlt for 3 projections"):
        read_projections(tmp_path / "s.mrc")
    (tmp_path / "s.rawtlt").write_text("0\n45\n90\n")
    p = read_projections(tmp_path / "s.mrc")
    assert "normalized" not in p.meta  # raw counts: reconstruct will ask for flats
    # angles given explicitly override the file
    np.testing.assert_allclose(read_projections(tmp_path / "s.mrc", angles=[1, 2, 3]).theta,
                               np.deg2rad([1, 2, 3]))  # fmt: skip


def test_tiff_stack_with_angles_file(tmp_path):
    data = _counts(3)
    tifffile.imwrite(tmp_path / "tilt.tif", data, photometric="minisblack")
    (tmp_path / "tilt.angles").write_text("-30\n0\n30\n")
    p = read_projections(tmp_path / "tilt.tif", pixel_nm=25.0)
    np.testing.assert_array_equal(p.data, data)
    np.testing.assert_allclose(p.theta, np.deg2rad([-30, 0, 30]))
    assert p.pixel_nm == 25.0 and p.meta["format"] == "tiff-stack"


def test_format_comes_from_content_not_extension(tmp_path):
    data = _counts(3)
    tifffile.imwrite(tmp_path / "tilt.mrc", data, photometric="minisblack")  # a TIFF named .mrc
    (tmp_path / "tilt.tlt").write_text("0\n60\n120\n")
    assert read_projections(tmp_path / "tilt.mrc").meta["format"] == "tiff-stack"


def test_bad_angle_file(tmp_path):
    (tmp_path / "a.tlt").write_text("0\nten\n")
    with pytest.raises(InputError, match=r"a\.tlt: line 2"):
        read_angles(tmp_path / "a.tlt")
    (tmp_path / "b.tlt").write_text("\n# nothing\n")
    with pytest.raises(InputError, match="no angles"):
        read_angles(tmp_path / "b.tlt")


def test_nan_and_nonpositive_intensities(tmp_path, caplog):
    data = _counts(4)
    data[1, 0, 2] = np.nan
    tifffile.imwrite(tmp_path / "n.tif", data, photometric="minisblack")
    (tmp_path / "n.tlt").write_text("0\n1\n2\n3\n")
    with pytest.raises(InputError, match=r"n\.tif: projections contains 1 NaN/inf.*\(1, 0, 2\)"):
        read_projections(tmp_path / "n.tif")
    # a few zero pixels are repaired later (logged and counted) ...
    data = _counts(200)
    data[5, 1, 3] = 0
    tifffile.imwrite(tmp_path / "z.tif", data, photometric="minisblack")
    (tmp_path / "z.tlt").write_text("\n".join(str(a) for a in range(200)))
    with caplog.at_level("WARNING", logger="sxtflow"):
        p = read_projections(tmp_path / "z.tif")
    assert p.meta["n_nonpositive"] == 1 and "zero/negative" in caplog.text
    # ... many are refused
    data[:5] = -1
    tifffile.imwrite(tmp_path / "z.tif", data, photometric="minisblack")
    with pytest.raises(InputError, match="zero or negative"):
        read_projections(tmp_path / "z.tif")


def test_flats_of_another_shape_are_named(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as fh:
        fh["exchange/data"] = _counts(3)
        fh["exchange/data_white"] = np.ones((2, 3, 3), np.float32)
        fh["exchange/theta"] = np.zeros(3)
    with pytest.raises(InputError, match=r"f\.h5: flats have shape \(3, 3\)"):
        read_projections(tmp_path / "f.h5")


# --------------------------------------------------------------------------- AmiraMesh


def amira_header(kind, shape, bbox, encoding="", binary="BINARY-LITTLE-ENDIAN 2.1", units=None):
    nz, ny, nx = shape
    u = f'    Units {{\n        Coordinates "{units}"\n    }}\n' if units else ""
    return (
        f"# AmiraMesh {binary}\n\ndefine Lattice {nx} {ny} {nz}\n\nParameters {{\n{u}"
        f'    BoundingBox {" ".join(str(b) for b in bbox)},\n    CoordType "uniform"\n}}\n\n'
        f"Lattice {{ {kind} }} @1{encoding}\n\n# Data section follows\n@1\n"
    ).encode()


def test_amira_binary_float_voxel_from_bounding_box(tmp_path):
    data = RNG.random((3, 4, 5)).astype(np.float32)
    # x: 5 voxels over 0..0.12 µm -> 0.03 µm = 30 nm; y: 4 over 0..0.06 -> 20 nm; z 3 over 0..0.1
    head = amira_header("float Data", data.shape, (0, 0.12, 0, 0.06, 0, 0.1), units="µm")
    (tmp_path / "lac.am").write_bytes(head + data.astype("<f4").tobytes() + b"\n")
    vol = read_volume(tmp_path / "lac.am")
    np.testing.assert_array_equal(vol.data, data)
    assert vol.voxel_nm == pytest.approx((50.0, 20.0, 30.0))
    assert vol.meta["voxel_source"] == "header"


def test_amira_ascii_ushort_and_nm_units(tmp_path):
    data = RNG.integers(0, 60000, (2, 3, 4)).astype(np.uint16)
    head = amira_header("ushort Data", data.shape, (0, 30, 0, 20, 0, 10), binary="3D ASCII 2.0",
                        units="nm")  # fmt: skip
    body = "\n".join(str(v) for v in data.ravel()).encode()
    (tmp_path / "v.am").write_bytes(head + body + b"\n")
    data_back, voxel, meta = read_amira(tmp_path / "v.am")
    np.testing.assert_array_equal(data_back, data)
    assert data_back.dtype == np.uint16 and voxel == pytest.approx((10.0, 10.0, 10.0))


def test_amira_label_field_rle_and_zip_as_uint8(tmp_path):
    labels = np.zeros((2, 3, 4), np.uint8)
    labels[0, 1, 1:3] = 4
    labels[1] = 7
    flat = labels.ravel()
    # HxByteRLE: runs (count, value) or literal blocks (0x80 | count, bytes…)
    rle = bytes([0x80 | 8]) + flat[:8].tobytes() + bytes([4, 0, 12, 7])
    assert len(flat) == 8 + 4 + 12 and not flat[8:12].any()
    head = amira_header("byte Labels", labels.shape, (0, 3, 0, 2, 0, 1), f"(HxByteRLE,{len(rle)})")
    (tmp_path / "l.labels").write_bytes(head + rle + b"\n")
    vol = read_volume(tmp_path / "l.labels", voxel_nm=10)
    np.testing.assert_array_equal(vol.data, labels)
    assert vol.data.dtype == np.uint8 and vol.meta["kind"] == "labels"
    z = zlib.compress(flat.tobytes())
    head = amira_header("byte Labels", labels.shape, (0, 3, 0, 2, 0, 1), f"(HxZip,{len(z)})")
    (tmp_path / "z.am").write_bytes(head + z + b"\n")
    np.testing.assert_array_equal(read_volume(tmp_path / "z.am", voxel_nm=10).data, labels)


@pytest.mark.parametrize("ascii", [False, True])
def test_amira_writer_roundtrip(tmp_path, ascii):
    data = RNG.random((3, 4, 4)).astype(np.float32)
    write_amira(tmp_path / "w.am", Volume(data, (20.0, 10.0, 10.0)), ascii=ascii)
    vol = read_volume(tmp_path / "w.am")
    np.testing.assert_allclose(vol.data, data, rtol=1e-6)
    assert vol.voxel_nm == pytest.approx((20.0, 10.0, 10.0))


def test_amira_truncated_and_corrupt(tmp_path):
    data = np.ones((3, 4, 5), np.float32)
    head = amira_header("float Data", data.shape, (0, 1, 0, 1, 0, 1))
    (tmp_path / "t.am").write_bytes(head + data.tobytes()[:50])
    with pytest.raises(InputError, match=r"t\.am: AmiraMesh file truncated: 50 of 240"):
        read_volume(tmp_path / "t.am")
    (tmp_path / "c.am").write_bytes(b"# AmiraMesh BINARY-LITTLE-ENDIAN 2.1\n\ngarbage\n")
    with pytest.raises(InputError, match=r"c\.am: .*data section"):
        read_volume(tmp_path / "c.am")
    nan = data.copy()
    nan[0, 0, 0] = np.nan
    (tmp_path / "n.am").write_bytes(head + nan.tobytes())
    with pytest.raises(InputError, match="NaN"):
        read_volume(tmp_path / "n.am")


def test_hdf5_volume(tmp_path):
    data = RNG.random((3, 4, 4)).astype(np.float32)
    with h5py.File(tmp_path / "v.h5", "w") as fh:
        ds = fh.create_dataset("recon/tomo", data=data)
        ds.attrs["voxel_size_nm"] = 15.0
    vol = read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(vol.data, data)
    assert vol.voxel_nm == (15.0, 15.0, 15.0)
