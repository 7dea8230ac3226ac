"""Zeiss/Xradia .txrm/.xrm projections (B24, Mistral) through read_projections.

The files are written by tests/_cfb.py (a minimal MS-CFB writer): olefile cannot write, and
no sample file may be downloaded. The first tests check the fixture itself against olefile
and txrm2tiff, so the reader tests below stand on a file those libraries accept.
"""

import struct
import sys

import numpy as np
import pytest
from _cfb import MAGIC, cfb_bytes, write_cfb, write_txrm, xradia_streams

from sxtflow.io import InputError, read_projections, read_volume

olefile = pytest.importorskip("olefile")
txrm2tiff = pytest.importorskip("txrm2tiff")

ANGLES = [-60.0, -15.5, 0.0, 30.25, 60.0]


def _series(n=5, rows=40, cols=60, dtype=np.uint16, seed=0):
    # 40 × 60 uint16 = 4800 bytes per image: over the 4096-byte cutoff, so the images sit in
    # regular sectors (FAT) while the small metadata streams sit in the mini stream
    rng = np.random.default_rng(seed)
    return rng.integers(200, 4000, (n, rows, cols)).astype(dtype)


def _flat(rows=40, cols=60, seed=1):
    return np.random.default_rng(seed).uniform(4000, 6000, (rows, cols)).astype(np.float32)


# --------------------------------------------------------------------------- the fixture


def test_cfb_writer_output_is_a_clean_compound_file():
    rng = np.random.default_rng(3)
    streams = {
        "Version": b"\x00\x00\xa0@",
        "tiny": b"",
        "A/mini": rng.bytes(100),  # mini stream, two mini sectors
        "A/edge": rng.bytes(4095),  # largest mini-stream size
        "A/cutoff": rng.bytes(4096),  # smallest regular-sector size
        "B/C/deep": rng.bytes(20000),
    }
    streams.update({f"Many/s{i}": rng.bytes(i * 37) for i in range(1, 30)})
    data = cfb_bytes(streams)
    assert data[:8] == MAGIC and len(data) % 512 == 0
    # the strictest level: any defect olefile knows of raises
    with olefile.OleFileIO(data, raise_defects=olefile.DEFECT_UNSURE) as ole:
        assert ole.parsing_issues == []
        listed = {"/".join(p) for p in ole.listdir(streams=True, storages=False)}
        assert listed == set(streams)
        for key, value in streams.items():
            assert ole.openstream(key).read() == value, key
        assert ole.get_size("A/edge") == 4095 and ole.get_size("A/cutoff") == 4096


def test_cfb_fixture_is_read_by_txrm2tiff(tmp_path):
    images, flat = _series(), _flat()
    path = write_txrm(tmp_path / "s.txrm", images, ANGLES, pixel_um=0.025, reference=flat)
    assert olefile.isOleFile(str(path))
    with txrm2tiff.open_txrm(path, strict=True) as txrm:
        assert type(txrm).__name__ == "Txrm5"
        np.testing.assert_array_equal(txrm.get_images(), images)
        np.testing.assert_array_equal(txrm.get_reference(), flat)
        assert txrm.image_info["Angles"] == pytest.approx(ANGLES)
        assert txrm.image_info["PixelSize"][0] == pytest.approx(0.025)
        assert txrm.image_dtype.value is np.uint16


# --------------------------------------------------------------------------- round trips


def test_txrm_round_trip_data_angles_pixel_size_and_reference(tmp_path):
    images, flat = _series(), _flat()
    path = write_txrm(tmp_path / "s.txrm", images, ANGLES, pixel_um=0.025, reference=flat)
    proj = read_projections(path)
    assert proj.data.dtype == np.float32 and proj.data.shape == (5, 40, 60)
    # rows flipped, as txrm2tiff writes its TIFFs and XRM Data Explorer shows them
    np.testing.assert_array_equal(proj.data, images[:, ::-1, :].astype(np.float32))
    np.testing.assert_allclose(proj.theta, np.deg2rad(ANGLES), rtol=0, atol=1e-6)
    assert proj.pixel_nm == 25.0  # µm (float32) in the file, nm here, not 24.9999994
    assert proj.flats.shape == (1, 40, 60)
    np.testing.assert_array_equal(proj.flats[0], flat[::-1])
    assert proj.darks is None
    assert proj.meta["format"] == "txrm"
    assert proj.meta["reader"] == f"txrm2tiff {txrm2tiff.__version__}"
    assert proj.meta["source_dtype"] == "uint16"
    assert proj.meta["xradia_version"] == 5.0
    assert proj.meta["energy_eV"] == pytest.approx(520.0)
    assert proj.meta["exposure_s"] == pytest.approx(1.0)
    assert "flat_exposure_scale" not in proj.meta


def test_orientation_matches_txrm2tiff_output(tmp_path):
    # the reader and a txrm2tiff conversion (the old workaround) must give the same images
    images, flat = _series(seed=5), _flat(seed=6)
    path = write_txrm(tmp_path / "s.txrm", images, ANGLES, reference=flat)
    with txrm2tiff.open_txrm(path, strict=True) as txrm:
        converted = txrm.get_output(load=True, clear_images=False)
    np.testing.assert_array_equal(read_projections(path).data, converted.astype(np.float32))


def test_version3_float_images_and_xrm_single_image(tmp_path):
    images = _series(n=3, dtype=np.float32, seed=7) + np.float32(0.5)
    flat = _flat(seed=8)
    path = write_txrm(tmp_path / "v3.txrm", images, ANGLES[:3], reference=flat, version=3.0)
    proj = read_projections(path)
    np.testing.assert_array_equal(proj.data, images[:, ::-1])
    np.testing.assert_array_equal(proj.flats[0], flat[::-1])
    assert proj.meta["source_dtype"] == "float32" and proj.meta["xradia_version"] == 3.0

    one = write_txrm(tmp_path / "flat.xrm", _series(n=1, seed=9), [0.0], pixel_um=0.01)
    proj = read_projections(one)
    assert proj.data.shape == (1, 40, 60) and proj.flats is None
    assert proj.theta.tolist() == [0.0] and proj.pixel_nm == pytest.approx(10.0, rel=1e-6)


def test_pixel_size_override_and_missing_pixel_size(tmp_path):
    path = write_txrm(tmp_path / "s.txrm", _series(), ANGLES, pixel_um=0.025)
    assert read_projections(path, pixel_nm=12.5).pixel_nm == 12.5
    nopix = write_txrm(tmp_path / "nopix.txrm", _series(), ANGLES, pixel_um=None)
    assert read_projections(nopix).pixel_nm is None  # the stage then asks for voxel_nm


def test_reference_exposure_is_matched_to_the_projections(tmp_path):
    images, flat = _series(), _flat()
    path = write_txrm(tmp_path / "s.txrm", images, ANGLES, reference=flat, reference_exposure_s=2.0)
    proj = read_projections(path)
    assert proj.meta["flat_exposure_scale"] == pytest.approx(0.5)
    np.testing.assert_allclose(proj.flats[0], flat[::-1] * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(proj.data, images[:, ::-1])  # counts left as they are

    # several exposures: each projection is brought to the reference exposure instead
    streams = xradia_streams(images, ANGLES, reference=flat, reference_exposure_s=2.0)
    exp = np.array([1.0, 1.0, 2.0, 4.0, 1.0], np.float32)
    streams["ImageInfo/ExpTimes"] = exp.tobytes()
    proj = read_projections(write_cfb(tmp_path / "var.txrm", streams))
    assert "flat_exposure_scale" not in proj.meta and proj.meta["exposure_scaled"]
    np.testing.assert_allclose(proj.data, images[:, ::-1] * (2.0 / exp)[:, None, None], rtol=1e-6)
    np.testing.assert_array_equal(proj.flats[0], flat[::-1])


def test_detected_by_content_not_extension(tmp_path):
    images = _series()
    path = write_txrm(tmp_path / "series.mrc", images, ANGLES, reference=_flat())
    proj = read_projections(path)
    assert proj.meta["format"] == "txrm"
    np.testing.assert_array_equal(proj.data, images[:, ::-1])
    noext = write_txrm(tmp_path / "series", images, ANGLES)
    assert read_projections(noext).data.shape == (5, 40, 60)
    # and an OLE2 file is not taken for an (old, unstamped) MRC volume
    with pytest.raises(InputError, match=r"series\.mrc: txrm volumes are not supported"):
        read_volume(path)


def test_angles_argument_replaces_a_missing_angle_stream(tmp_path):
    path = write_txrm(tmp_path / "noang.txrm", _series(), None)
    proj = read_projections(path, angles=ANGLES)
    np.testing.assert_allclose(proj.theta, np.deg2rad(ANGLES))


# --------------------------------------------------------------------------- bad input


def test_missing_angle_stream_is_named(tmp_path):
    path = write_txrm(tmp_path / "noang.txrm", _series(), None)
    with pytest.raises(InputError, match=r"noang\.txrm: no 'ImageInfo/Angles' stream"):
        read_projections(path)


def test_angle_count_must_match_image_count(tmp_path):
    path = write_txrm(tmp_path / "few.txrm", _series(), ANGLES[:3])
    with pytest.raises(InputError, match=r"few\.txrm: 3 angles in ImageInfo/Angles for 5 images"):
        read_projections(path)
    # an interrupted scan: 5 planned, 3 taken, 5 angles
    streams = xradia_streams(_series(n=3), ANGLES)
    streams["ImageInfo/NoOfImages"] = np.int32(5).tobytes()
    with pytest.raises(InputError, match=r"5 angles .* for 3 images \(an interrupted scan: 5"):
        read_projections(write_cfb(tmp_path / "cut.txrm", streams))


def test_nan_pixels_are_refused(tmp_path):
    images = _series(dtype=np.float32)
    images[2, 7, 11] = np.nan
    path = write_txrm(tmp_path / "nan.txrm", images, ANGLES)
    # row 7 of the file is row 40 - 1 - 7 = 32 after the flip
    with pytest.raises(InputError, match=r"nan\.txrm: projections contains 1 NaN.*\(2, 32, 11\)"):
        read_projections(path)
    flat = _flat()
    flat[0, 0] = np.inf
    path = write_txrm(tmp_path / "badflat.txrm", _series(), ANGLES, reference=flat)
    with pytest.raises(InputError, match=r"badflat\.txrm: flats contains 1 NaN/inf"):
        read_projections(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_txrm(tmp_path / "t.txrm", _series(), ANGLES, reference=_flat())
    raw = path.read_bytes()
    for keep in (len(raw) // 2, 3000, 600):
        path.write_bytes(raw[:keep])
        with pytest.raises(InputError, match=r"t\.txrm: ") as err:
            read_projections(path)
        assert any(w in str(err.value) for w in ("cannot read TXRM", "truncated", "OLE")), (
            keep,
            str(err.value),
        )


def test_missing_or_short_image_stream_is_caught(tmp_path):
    streams = xradia_streams(_series(), ANGLES)
    del streams["ImageData1/Image4"]
    with pytest.raises(InputError, match=r"gap\.txrm: only 3 of 5 images .* truncated or corrupt"):
        read_projections(write_cfb(tmp_path / "gap.txrm", streams))
    # Image3's directory entry claims more bytes than its sector chain holds: olefile only
    # logs that ('incomplete OLE stream'), txrm2tiff stops at the short image
    raw = bytearray(cfb_bytes(xradia_streams(_series(), ANGLES)))
    entry = raw.find("Image3".encode("utf-16-le").ljust(64, b"\0"))
    assert entry > 0 and struct.unpack_from("<Q", raw, entry + 120) == (4800,)
    struct.pack_into("<Q", raw, entry + 120, 4800 + 3 * 512)
    path = tmp_path / "short.txrm"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"short\.txrm: only 2 of 5 images .*OLE defects: .*"):
        read_projections(path)


def test_corrupt_ole_and_foreign_ole_files(tmp_path):
    junk = tmp_path / "junk.txrm"
    junk.write_bytes(MAGIC + bytes(range(256)) * 8)
    with pytest.raises(InputError, match=r"junk\.txrm: cannot read TXRM file"):
        read_projections(junk)
    doc = write_cfb(tmp_path / "doc.txrm", {"WordDocument": b"x" * 100})
    with pytest.raises(InputError, match=r"doc\.txrm: OLE2 file without an 'ImageInfo' storage"):
        read_projections(doc)
    streams = xradia_streams(_series(), ANGLES)
    streams["Version"] = np.float32(4.0).tobytes()
    with pytest.raises(InputError, match=r"v4\.txrm: txrm2tiff .* cannot open .*\[4\.0\]"):
        read_projections(write_cfb(tmp_path / "v4.txrm", streams))


def test_mosaic_is_refused(tmp_path):
    streams = xradia_streams(_series(n=4), ANGLES[:4])
    streams["ImageInfo/MosiacRows"] = np.int32(2).tobytes()
    streams["ImageInfo/MosiacColumns"] = np.int32(2).tobytes()
    with pytest.raises(InputError, match=r"mosaic\.txrm: Zeiss mosaic"):
        read_projections(write_cfb(tmp_path / "mosaic.txrm", streams))


def test_without_txrm2tiff_the_error_says_what_to_install(tmp_path, monkeypatch):
    path = write_txrm(tmp_path / "s.txrm", _series(), ANGLES)
    monkeypatch.setitem(sys.modules, "txrm2tiff", None)  # import now raises ImportError
    with pytest.raises(InputError, match=r"s\.txrm: .*needs the 'txrm2tiff' package.*pip install"):
        read_projections(path)


def test_tolerated_ole_defects_are_recorded(tmp_path):
    # a non-zero transaction signature is a defect olefile tolerates; the data are intact
    raw = bytearray(cfb_bytes(xradia_streams(_series(), ANGLES)))
    struct.pack_into("<I", raw, 0x34, 7)
    path = tmp_path / "odd.txrm"
    path.write_bytes(bytes(raw))
    proj = read_projections(path)
    assert proj.data.shape == (5, 40, 60)
    assert any("transaction" in d for d in proj.meta["ole_defects"])
