"""3D volumes: format sniffing, reading MRC/REC, TIFF, HDF5 and AmiraMesh with their voxel
size; writing MRC with a metadata sidecar bound to it by a CRC-32.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..core import InputError, Volume, check_finite
from ._amira import read_amira
from ._atomic import atomic_path
from ._tables import _json_text, read_json

_MRC_SUFFIXES = {".mrc", ".rec", ".st", ".ali", ".map", ".mrcs"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _sniff(path: Path) -> str:
    """Detect a file's format from its content (the extension is only a hint)."""
    if path.is_dir():
        if {p.name for p in path.iterdir()} & {"zarr.json", ".zgroup", ".zarray"}:
            return "zarr"
        raise InputError(
            path,
            "is a directory, not a file (expected MRC, TIFF, HDF5, AmiraMesh or Zeiss TXRM/XRM)",
        )
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if len(head) >= 212 and head[208:212] == b"MAP ":
        return "mrc"
    if head.startswith(b"# AmiraMesh") or head.startswith(b"# Avizo"):
        return "amira"
    if head[:8] == _OLE2_MAGIC:  # Zeiss/Xradia .txrm/.xrm are OLE2 compound files
        return "txrm"
    if path.suffix in (".zarr",):
        return "zarr"
    if path.suffix.lower() in _MRC_SUFFIXES and len(head) >= 1024:
        return "mrc"  # old MRC files without the MAP stamp
    raise InputError(
        path, "unrecognised file format (expected MRC, TIFF, HDF5, AmiraMesh or Zeiss TXRM/XRM)"
    )


def read_volume(
    path: str | os.PathLike, voxel_nm=None, *, allow_nan: bool = False, default_voxel_nm=None
) -> Volume:
    """Read a 3D volume (MRC/REC, TIFF stack, AmiraMesh ``.am``, HDF5) with its voxel size.

    The format is detected from the content (an AmiraMesh ``.rec`` is read as AmiraMesh).
    HDF5: the dataset ``exchange/data``, ``entry/data/data``, ``volume`` or ``data``, or
    else the only 3D dataset in the file; voxel size from its ``voxel_size_nm`` attribute.

    Parameters
    ----------
    path : path-like
    voxel_nm : float or 3-tuple, optional
        Voxel size in nm (the sample sheet's ``voxel_nm``). Wins over the header, with a
        warning when they differ by more than :data:`VOXEL_MISMATCH_WARN` (both are kept in
        ``meta["voxel_nm_header"]``); required when the file has none. Units are never
        guessed: TIFF, an AmiraMesh ``BoundingBox`` without ``Units``, MRC with a voxel size of
        0 or 1 Å (unset) and HDF5 without ``voxel_size_nm`` have no voxel size.
    allow_nan : bool
        If false (default), NaN/inf values are an error.
    default_voxel_nm : float or 3-tuple, optional
        Voxel size in nm for a file that has none (``meta["voxel_source"] = "default"``), e.g.
        a label volume taken to lie on its tomogram's grid; a header's wins over it.

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        Missing, unreadable, non-3D or non-finite data, or no voxel size in the file and
        none given (the message says why and names the sheet's ``voxel_nm`` column).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    fmt = _sniff(path)
    meta: dict = {}
    header_voxel = None
    no_voxel = f"a {fmt.upper()} file carries no voxel size"
    try:
        if fmt == "mrc":
            import mrcfile

            with mrcfile.open(path, permissive=False, header_only=False) as mrc:
                data = np.asarray(mrc.data)
                vs = mrc.voxel_size
                header_voxel = _mrc_voxel_nm(vs)
                if header_voxel is None:
                    no_voxel = f"the MRC header's voxel size is {float(vs.x):g} Å (unset)"
                labels = _mrc_labels(mrc)
            for text in labels:
                if text.startswith("sxtflow {"):
                    with contextlib.suppress(json.JSONDecodeError):
                        meta.update(json.loads(text[len("sxtflow ") :]))
            meta.update(_sidecar(path, labels))
        elif fmt == "tiff":
            import tifffile

            data = tifffile.imread(path)
        elif fmt == "amira":
            data, header_voxel, meta = read_amira(path)
            if header_voxel is None:
                no_voxel = (
                    "the AmiraMesh BoundingBox has no Units (Coordinates), so its size is unitless"
                    if "amira_bbox_unitless" in meta
                    else "the AmiraMesh file has no BoundingBox"
                )
        elif fmt == "hdf5":
            data, header_voxel = _read_hdf5_volume(path)
            no_voxel = "the HDF5 dataset has no voxel_size_nm attribute"
        elif fmt == "zarr":
            raise InputError(
                path, "is a zarr store; volumes are read from MRC, TIFF, HDF5 or AmiraMesh files"
            )
        else:
            raise InputError(path, f"{fmt} volumes are not supported here yet")
    except InputError:
        raise
    except Exception as exc:  # corrupt or truncated file
        raise InputError(path, f"cannot read {fmt.upper()} file ({exc})") from exc
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D volume (z, y, x), got shape {data.shape}")
    if not allow_nan:
        check_finite(data, path)
    valid = header_voxel is not None and all(np.isfinite(v) and v > 0 for v in header_voxel)
    if voxel_nm is None and header_voxel is None and default_voxel_nm is not None:
        voxel_nm = default_voxel_nm
        meta["voxel_source"] = "default"
    elif voxel_nm is None:
        if header_voxel is None:
            raise InputError(
                path,
                f"no voxel size in the file ({no_voxel}); give it in nm in the sample "
                "sheet's voxel_nm column",
            )
        if not valid:
            shown = ", ".join(f"{v:g}" for v in header_voxel)
            raise InputError(
                path,
                f"the header's voxel size ({shown}) nm (z, y, x) is not positive and finite: "
                "a corrupt header; give voxel_nm in the sample sheet",
            )
        voxel_nm = header_voxel
        meta["voxel_source"] = "header"
    else:
        meta["voxel_source"] = "sample sheet"
        given = np.broadcast_to(np.asarray(voxel_nm, dtype=float), (3,))
        if valid:
            meta["voxel_nm_header"] = list(header_voxel)
            if np.any(np.abs(given / np.asarray(header_voxel) - 1) > VOXEL_MISMATCH_WARN):
                logging.getLogger("sxtflow").warning(
                    "%s: the sample sheet's voxel_nm %s nm differs by more than %g %% from the "
                    "file's %s nm; using the sheet's",
                    path,
                    "/".join(f"{v:g}" for v in given),
                    100 * VOXEL_MISMATCH_WARN,
                    "/".join(f"{v:g}" for v in header_voxel),
                )
    return Volume(np.ascontiguousarray(data), voxel_nm, meta)


#: Relative difference between the sample sheet's voxel size and a file's above which a
#: warning is logged (the sheet wins).
VOXEL_MISMATCH_WARN = 0.01


def _mrc_voxel_nm(voxel_size) -> tuple[float, float, float] | None:
    """(z, y, x) nm from an MRC voxel size (Å, record with x, y, z); None when unset: 0 Å,
    or 1 Å, which many programs write when they know no pixel size. Negative or non-finite
    values are returned as they are (a corrupt header, reported by the caller)."""
    vs = tuple(float(voxel_size[a]) for a in ("z", "y", "x"))
    unset = any(v == 0 or abs(v - 1.0) < 1e-6 for v in vs)
    if unset and all(np.isfinite(v) and v >= 0 for v in vs):
        return None
    return tuple(v / 10.0 for v in vs)


def _read_hdf5_volume(path: Path):
    import h5py

    with h5py.File(path, "r") as fh:
        ds = None
        for key in ("exchange/data", "entry/data/data", "volume", "data"):
            if key in fh and getattr(fh[key], "ndim", 0) == 3:
                ds = fh[key]
                break
        if ds is None:
            found = []
            fh.visititems(
                lambda name, obj: found.append(obj) if getattr(obj, "ndim", 0) == 3 else None
            )
            if len(found) != 1:
                raise InputError(
                    path, f"HDF5 file holds {len(found)} 3D datasets; cannot tell the volume"
                )
            ds = found[0]
        data = np.asarray(ds[...])
        voxel = None
        if "voxel_size_nm" in ds.attrs:
            voxel = tuple(
                float(v) for v in np.broadcast_to(np.asarray(ds.attrs["voxel_size_nm"]), (3,))
            )
    return data, voxel


_SIDECAR_LABEL = "sxtflow-sidecar crc32="


def _mrc_labels(mrc) -> list[str]:
    return [
        bytes(label).decode("ascii", "replace").strip()
        for label in mrc.header.label[: int(mrc.header.nlabl)]
    ]


def _sidecar(path: Path, labels: list[str]) -> dict:
    """The JSON sidecar ``<path>.json`` of an MRC file, if it belongs to it.

    :func:`write_volume` records the sidecar's CRC-32 in an MRC label; a sidecar that does not
    match it (left from an earlier write, e.g. by a killed job) is ignored with a warning. MRC
    files from elsewhere (no such label) take a sidecar beside them as it is.
    """
    sidecar = path.with_name(path.name + ".json")
    want = next((t[len(_SIDECAR_LABEL) :] for t in labels if t.startswith(_SIDECAR_LABEL)), None)
    if not sidecar.is_file():
        return {}
    if want is not None:
        got = f"{zlib.crc32(sidecar.read_bytes()):08x}"
        if got != want:
            logging.getLogger("sxtflow").warning(
                "%s: ignoring the metadata sidecar %s: it belongs to an earlier write "
                "(CRC-32 %s, the MRC header records %s)", path, sidecar.name, got, want,
            )  # fmt: skip
            return {}
    meta = read_json(sidecar)
    if not isinstance(meta, dict):
        raise InputError(sidecar, "metadata sidecar is not a JSON object")
    return meta


def read_meta(path: str | os.PathLike) -> dict:
    """Metadata of a volume written by :func:`write_volume` (its JSON sidecar), without the data."""
    import mrcfile

    path = Path(path)
    labels = []
    if path.is_file():
        with contextlib.suppress(Exception), mrcfile.open(path, header_only=True) as mrc:
            labels = _mrc_labels(mrc)
    return _sidecar(path, labels)


_SLAB_VOXELS = 1 << 22  # voxels per slab of write_volume: a float64 copy is 32 MiB


def _mrc_dtype(data: np.ndarray, path: Path) -> np.dtype:
    """The dtype :func:`write_volume` stores ``data`` as (the MRC mode's)."""
    from mrcfile.utils import dtype_from_mode, mode_from_dtype

    if data.dtype == np.float64:
        return np.dtype(np.float32)
    if data.dtype == bool:
        return np.dtype(np.uint16)  # uint8 and bool are mode 6 (16 bits) in the file
    if data.dtype.kind in "iu" and data.dtype.itemsize > 2:
        if data.size and (data.min() < 0 or data.max() > 65535):
            raise ValueError(f"integer volume out of uint16 range for {path}")
        return np.dtype(np.uint16)
    if data.dtype.kind == "c":
        raise ValueError(f"complex volumes are not supported ({path})")
    return np.dtype(dtype_from_mode(mode_from_dtype(data.dtype)))


def _slabs(data: np.ndarray, dtype: np.dtype):
    """``data`` as ``dtype``, a few million voxels at a time along the first axis."""
    step = max(1, _SLAB_VOXELS // max(1, int(np.prod(data.shape[1:]))))
    for z in range(0, data.shape[0], step):
        yield np.ascontiguousarray(data[z : z + step], dtype=dtype)


def _header_stats(data: np.ndarray, dtype=None) -> tuple[float, float, float, float]:
    """The MRC header's statistics of a volume, computed slab by slab.

    Parameters
    ----------
    data : ndarray
        The volume (any shape with a first axis); values as stored, i.e. after conversion
        to ``dtype``.
    dtype : numpy dtype, optional
        The dtype the volume is stored as (default its own).

    Returns
    -------
    tuple of float
        ``(dmin, dmax, dmean, rms)``: minimum, maximum, mean and standard deviation about
        the mean (what the MRC format's ``rms`` field holds and ``mrcfile`` writes), in
        the volume's units. The mean and standard deviation are accumulated in float64 (two
        passes), so they are the exactly rounded values; ``mrcfile``'s own
        ``update_header_stats`` accumulates in float32 over the whole array at once
        (``data.std()``: a float32 copy of the volume) and can differ in the last bits.
        No copy of the whole volume is made: each slab (≤ 4 M voxels) at a time.

    Examples
    --------
    >>> _header_stats(np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    (0.0, 7.0, 3.5, 2.29128784747792)
    """
    dtype = np.dtype(data.dtype if dtype is None else dtype)
    n = data.size
    if n == 0:
        raise ValueError("an empty volume has no statistics")
    lows, highs, total = [], [], 0.0
    for slab in _slabs(data, dtype):
        lows.append(slab.min())
        highs.append(slab.max())
        total += float(slab.sum(dtype=np.float64))
    mean = total / n
    squares = 0.0
    for slab in _slabs(data, dtype):
        dev = slab.astype(np.float64)
        dev -= mean
        squares += float(np.dot(dev.ravel(), dev.ravel()))
    return float(np.min(lows)), float(np.max(highs)), mean, float(np.sqrt(squares / n))


def write_volume(path: str | os.PathLike, volume: Volume) -> Path:
    """Write a volume atomically as MRC (voxel size in the header, metadata in a label).

    float64 is stored as float32, bool as uint8; int64 label volumes must fit int16/uint16.
    Metadata go to a JSON sidecar ``<path>.json`` as well, so nothing is truncated; its CRC-32
    is recorded in an MRC label, so a reader can tell a stale sidecar (an earlier write's, e.g.
    after a killed job) and a volume without metadata removes one. The header's labels carry no
    time (``Created by sxtflow <version>``), so the same volume gives the same bytes.
    The data are converted and written slab by slab, and the header's statistics computed
    the same way (:func:`_header_stats`): writing takes no copy of the whole volume.
    """
    import mrcfile
    from mrcfile.utils import mode_from_dtype

    from .. import __version__

    path = Path(path)
    data = np.asarray(volume.data)
    dtype = _mrc_dtype(data, path)
    sidecar = path.with_name(path.name + ".json")
    text = _json_text(volume.meta) if volume.meta else None
    stats = _header_stats(data, dtype) if data.size else None
    if stats is not None and np.isnan(stats[0]):
        warnings.warn("Data array contains NaN values", RuntimeWarning, stacklevel=2)
    elif stats is not None and (np.isinf(stats[0]) or np.isinf(stats[1])):
        warnings.warn("Data array contains infinite values", RuntimeWarning, stacklevel=2)
    with atomic_path(path) as tmp:
        # the header from mrcfile (shape, mode, voxel size, labels) without its statistics
        # pass (set_data: a float32 copy of the whole volume, and uint8 widened to uint16
        # first); the data block is untouched here and written below, slab by slab
        mode = mode_from_dtype(dtype)
        with mrcfile.new_mmap(tmp, data.shape, mrc_mode=mode, overwrite=True) as mrc:
            z, y, x = volume.voxel_nm
            mrc.voxel_size = (x * 10.0, y * 10.0, z * 10.0)  # Å, (x, y, z)
            mrc.header.label[0] = f"Created by sxtflow {__version__}"  # mrcfile's has the time
            mrc.header.nlabl = 1
            label = "sxtflow " + json.dumps(volume.meta, separators=(",", ":"), default=float)
            if len(label) <= 80:
                mrc.add_label(label)
            if text is not None:
                mrc.add_label(f"{_SIDECAR_LABEL}{zlib.crc32(text.encode()):08x}")
            if stats is None:
                mrc.reset_header_stats()
            else:
                mrc.header.dmin, mrc.header.dmax, mrc.header.dmean, mrc.header.rms = stats
            offset = int(mrc.header.nbytes) + int(mrc.header.nsymbt)
        with open(tmp, "r+b") as fh:
            fh.seek(offset)
            for slab in _slabs(data, dtype):
                fh.write(memoryview(slab).cast("B"))
    if text is not None:
        with atomic_path(sidecar) as tmp:
            tmp.write_text(text)
    elif sidecar.is_file():
        sidecar.unlink()  # a sidecar without metadata to hold is an earlier write's
    return path
