import json
import os
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

from sxtflow.io import (
    InputError,
    Projections,
    Volume,
    atomic_path,
    read_json,
    read_projections,
    read_table,
    read_volume,
    write_json,
    write_projections,
    write_table,
    write_volume,
)


def test_volume_roundtrip_keeps_voxel_size_and_meta(tmp_path):
    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    path = write_volume(tmp_path / "v.mrc", Volume(data, (20.0, 10.0, 10.0), {"unit": "1/um"}))
    back = read_volume(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.voxel_nm == pytest.approx((20.0, 10.0, 10.0))
    assert back.spacing_um == pytest.approx((0.02, 0.01, 0.01))
    assert back.meta["unit"] == "1/um"


def test_volume_rejects_nan_naming_file(tmp_path):
    data = np.zeros((3, 3, 3), np.float32)
    data[1, 2, 0] = np.nan
    path = write_volume(tmp_path / "nan.mrc", Volume(data, 10.0))
    with pytest.raises(InputError, match=r"nan\.mrc.*NaN.*\(1, 2, 0\)"):
        read_volume(path)


def _mrcfile_reference(path, data, voxel_nm):
    """The file mrcfile writes itself (set_data: its own whole-array header statistics)."""
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = tuple(v * 10.0 for v in voxel_nm[::-1])
    return path


@pytest.mark.parametrize(
    "kind", ["uint8", "bool", "int64", "int16", "float32", "float64", "nan", "constant"]
)
def test_write_volume_header_statistics_slab_by_slab(tmp_path, monkeypatch, kind):
    # slabs of 2 slices (and a shorter last one), so the statistics are combined across slabs
    import mrcfile

    from sxtflow.io import _volumes

    monkeypatch.setattr(_volumes, "_SLAB_VOXELS", 2 * 6 * 7)
    rng = np.random.default_rng(3)
    data = {
        "uint8": rng.integers(0, 10, (5, 6, 7)).astype(np.uint8),
        "bool": rng.random((5, 6, 7)) > 0.3,
        "int64": rng.integers(0, 3000, (5, 6, 7)),
        "int16": rng.integers(-300, 300, (5, 6, 7)).astype(np.int16),
        "float32": rng.normal(0.3, 0.1, (5, 6, 7)).astype(np.float32),
        "float64": rng.normal(0.3, 0.1, (5, 6, 7)),
        "nan": np.where(rng.random((5, 6, 7)) > 0.9, np.nan, 1.0).astype(np.float32),
        "constant": np.full((5, 6, 7), 0.25, np.float32),
    }[kind]
    stored = data.astype({"float64": np.float32, "bool": np.uint16}.get(kind, data.dtype))
    stored = stored.astype(np.uint16) if kind in ("uint8", "int64") else stored
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = write_volume(tmp_path / "ours.mrc", Volume(data, (20.0, 10.0, 10.0)))
        ref = _mrcfile_reference(tmp_path / "ref.mrc", stored, (20.0, 10.0, 10.0))
    # the same warnings as mrcfile's (NaN values), once from each writer
    assert [str(w.message) for w in caught] == ["Data array contains NaN values"] * 2 * (
        kind == "nan"
    )
    a, b = ours.read_bytes(), ref.read_bytes()
    assert a[1024:] == b[1024:]  # the same data block, byte for byte
    with mrcfile.open(ours, header_only=True) as m, mrcfile.open(ref, header_only=True) as r:
        ha, hb = m.header, r.header
    stats = ("dmin", "dmax", "dmean", "rms")
    skip = {"label", "nlabl", *stats}  # labels: ours carry the version and metadata
    assert [n for n in ha.dtype.names if n not in skip and ha[n].tobytes() != hb[n].tobytes()] == []
    # min and max exactly mrcfile's; mean and rms (standard deviation) the exactly rounded
    # values of the whole volume, equal to mrcfile's float32 accumulation to float32 precision
    exact = stored.astype(np.float64)
    want = [exact.min(), exact.max(), exact.mean(), exact.std()]
    np.testing.assert_array_equal([ha[n] for n in stats], np.float32(want))
    assert [float(ha[n]) for n in stats] == pytest.approx(
        [float(hb[n]) for n in stats], rel=1e-6, nan_ok=True
    )
    if kind != "nan":
        assert mrcfile.validate(ours, print_file=open(os.devnull, "w"))


def test_truncated_mrc_is_a_clear_error(tmp_path):
    path = write_volume(tmp_path / "t.mrc", Volume(np.ones((8, 8, 8), np.float32), 10.0))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"t\.mrc: cannot read MRC"):
        read_volume(path)


def test_unknown_format_and_missing_file(tmp_path):
    junk = tmp_path / "junk.mrc"
    junk.write_bytes(b"hello")
    with pytest.raises(InputError, match="unrecognised file format"):
        read_volume(junk)
    with pytest.raises(InputError, match="does not exist"):
        read_volume(tmp_path / "nope.mrc")


def test_volume_without_voxel_size_needs_one(tmp_path):
    import tifffile

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 4), np.float32), photometric="minisblack")
    with pytest.raises(InputError, match="no voxel size"):
        read_volume(path)
    assert read_volume(path, voxel_nm=30).voxel_nm == (30.0, 30.0, 30.0)


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("precious\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("job killed")
    assert target.read_text() == "precious\n"
    assert list(tmp_path.iterdir()) == [target]


def test_projections_roundtrip_and_degrees(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.random((5, 2, 7)).astype(np.float32) + 1
    theta = np.linspace(0, np.pi, 5, endpoint=False)
    proj = Projections(data, theta, np.ones((2, 2, 7)), np.zeros((2, 2, 7)), 25.0, {"a": 1})
    path = write_projections(tmp_path / "p.h5", proj)
    back = read_projections(path)
    np.testing.assert_allclose(back.theta, theta)
    assert back.pixel_nm == 25.0 and back.meta["a"] == 1
    assert back.meta["format"] == "dxchange"
    with h5py.File(path, "r+") as fh:
        del fh["exchange/theta"]
        fh["exchange/theta"] = np.rad2deg(theta)  # no units attribute, values in degrees
    np.testing.assert_allclose(read_projections(path).theta, theta)


def test_projections_bad_angle_count_is_named(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as fh:
        fh["exchange/data"] = np.ones((4, 2, 3), np.float32)
        fh["exchange/theta"] = np.zeros(3)
    with pytest.raises(InputError, match=r"bad\.h5: 3 angles for 4 projections"):
        read_projections(path)


def test_tables_and_json_roundtrip(tmp_path):
    df = pd.DataFrame({"class": ["a", "b"], "volume_um3": [1.5, 2.25]})
    pd.testing.assert_frame_equal(read_table(write_table(tmp_path / "t.tsv", df)), df)
    write_json(tmp_path / "c.json", {"x": np.float32(1.5), "y": np.arange(2)})
    assert read_json(tmp_path / "c.json") == {"x": 1.5, "y": [0, 1]}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="malformed JSON"):
        read_json(tmp_path / "bad.json")
    assert json.loads((tmp_path / "c.json").read_text())["x"] == 1.5


def test_scratch_directory_is_named_as_the_outputs_temporaries(tmp_path):
    import os

    from sxtflow.io import remove_stale_temporaries, scratch_directory

    out = tmp_path / "sub" / "labels.mrc"
    with scratch_directory(out) as scratch:
        assert scratch.is_dir() and scratch.parent == out.parent
        assert scratch.name.startswith(f".labels.mrc.{os.getpid()}@")
        (scratch / "u.zarr").mkdir()
        # a live process's scratch is left alone by the next writer ...
        assert remove_stale_temporaries(out) == []
    assert not scratch.exists()  # ... and removed when the stage is done
    # a killed run's scratch (its pid no longer runs) is removed by the next write
    dead = out.parent / (scratch.name.replace(f".{os.getpid()}@", ".999999999@"))
    dead.mkdir()
    with scratch_directory(out):
        assert not dead.exists()
