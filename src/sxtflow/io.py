"""Readers and writers. The only module that touches files.

Conventions
-----------
* Volumes are ``(z, y, x)`` arrays; the voxel size travels with them as ``voxel_nm``,
  a ``(z, y, x)`` tuple in nanometres (MRC headers store Ångström; we convert).
* Projections are ``(angles, rows, columns)``; angles in radians; pixel size in nm.
* Every writer is atomic: it writes a temporary file beside the target and renames it,
  so an interrupted job never leaves a half-written file that looks complete.
* Every reader validates and raises :class:`InputError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "InputError",
    "OutputError",
    "remove_stale_temporaries",
    "LAC_RANGE_PER_UM",
    "check_lac",
    "as_spacing_um",
    "Volume",
    "Projections",
    "atomic_path",
    "read_volume",
    "read_amira",
    "write_amira",
    "read_meta",
    "create_zarr_array",
    "INTEGRITY_RECORD",
    "seal_store",
    "verify_store",
    "store_token",
    "write_volume",
    "read_projections",
    "read_angles",
    "MAX_NONPOSITIVE_FRACTION",
    "write_projections",
    "read_table",
    "read_text_table",
    "write_table",
    "write_json",
    "read_json",
    "check_finite",
]


class InputError(ValueError):
    """Bad input: the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def _voxel3(voxel_nm) -> tuple[float, float, float]:
    v = np.broadcast_to(np.asarray(voxel_nm, dtype=float), (3,))
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"voxel size must be positive and finite, got {voxel_nm!r} nm")
    return tuple(float(x) for x in v)


def as_spacing_um(spacing_um) -> np.ndarray:
    """Voxel size ``(z, y, x)`` in µm as a float array of 3 (a scalar means isotropic).

    Raises ``ValueError`` unless it is 1 or 3 positive finite numbers.
    """
    s = np.asarray(spacing_um, dtype=float).reshape(-1)
    if s.size == 1:
        s = np.repeat(s, 3)
    if s.size != 3 or np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing_um must be 3 positive floats (z, y, x) µm, got {spacing_um!r}")
    return s


@dataclass
class Volume:
    """A 3D array with its voxel size.

    Attributes
    ----------
    data : ndarray, shape (z, y, x)
    voxel_nm : tuple of 3 floats
        Voxel size along (z, y, x) in nanometres.
    meta : dict
        Free-form JSON-serialisable metadata (e.g. ``{"unit": "1/um", "ice_lac_per_um": 0.1}``).
    """

    data: np.ndarray
    voxel_nm: tuple[float, float, float]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(f"a volume must be 3D (z, y, x), got shape {self.data.shape}")
        self.voxel_nm = _voxel3(self.voxel_nm)

    @property
    def spacing_um(self) -> tuple[float, float, float]:
        """Voxel size along (z, y, x) in micrometres."""
        return tuple(v / 1000.0 for v in self.voxel_nm)


@dataclass
class Projections:
    """A tilt series with everything needed to reconstruct it.

    Attributes
    ----------
    data : ndarray, shape (angles, rows, columns)
        Raw intensities (counts) or, when ``meta["normalized"]`` is true, transmission.
    theta : ndarray, shape (angles,)
        Projection angles in radians.
    flats, darks : ndarray, shape (n, rows, columns) or None
        Flat (open beam) and dark fields, in counts.
    pixel_nm : float
        Detector pixel size in nanometres (at the sample).
    meta : dict
        Extra metadata, e.g. the simulator's true shifts ``"shifts_px"``.
    """

    data: np.ndarray
    theta: np.ndarray
    flats: np.ndarray | None = None
    darks: np.ndarray | None = None
    pixel_nm: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(
                f"projections must be 3D (angles, rows, columns), got {self.data.shape}"
            )
        self.theta = np.asarray(self.theta, dtype=float).ravel()
        if self.theta.size != self.data.shape[0]:
            raise ValueError(
                f"{self.theta.size} angles for {self.data.shape[0]} projections: counts must match"
            )
        for name in ("flats", "darks"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr)
                if arr.ndim == 2:
                    arr = arr[None]
                if arr.shape[1:] != self.data.shape[1:]:
                    raise ValueError(
                        f"{name} have shape {arr.shape[1:]} but projections {self.data.shape[1:]}"
                    )
                setattr(self, name, arr)


# --------------------------------------------------------------------------- atomic writes


class OutputError(InputError):
    """An output cannot be written (full disk, read-only directory, wrong kind of path)."""


#: errno values of a failed write, and what they mean to a user
_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (file-system or process file-size limit)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied (read-only directory?)",
    errno.EPERM: "operation not permitted (read-only directory?)",
}


def _write_failure(exc: BaseException) -> str | None:
    """What a failed write means (full disk, read-only …), or None if ``exc`` is not one.

    HDF5 and zarr wrap the OS error in their own exceptions (h5py: a ``RuntimeError`` saying
    ``errno = 28``), so the message and the exception's causes are read too.
    """
    seen = 0
    while exc is not None and seen < 5:
        code = exc.errno if isinstance(exc, OSError) else None
        if code is None and isinstance(exc, Exception):
            text = str(exc)
            match = re.search(r"errno = (\d+)", text)
            if match:
                code = int(match.group(1))
            else:
                code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in text), None)
        if code in _WRITE_ERRNOS:
            return _WRITE_ERRNOS[code]
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _output_error(path: Path, reason: str) -> OutputError:
    return OutputError(
        path, f"cannot write this output: {reason}; it was left as it was, with no partial "
        "file (free space or fix the permissions, then rerun)",
    )  # fmt: skip


def _owner() -> str:
    """``pid@host`` of this process, as it appears in the names of its temporary outputs."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    return f"{os.getpid()}@{host}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left beside it; return them.

    :func:`atomic_path` names its temporaries ``.<name>.<pid>@<host>.<random>.tmp…``. One is
    stale when its process no longer runs on this host (or it predates owner names); a
    temporary of a live process, or of another host (a cluster node: its liveness cannot be
    checked from here), is left alone.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.(?:(\d+)@([A-Za-z0-9-]*)\.)?[a-z0-9_]{{8}}(?:\.old)?\.tmp"
    )
    host = _owner().split("@", 1)[1]
    removed = []
    for cand in path.parent.iterdir():
        m = pattern.match(cand.name)
        if m is None:
            continue
        pid, owner_host = m.groups()
        if pid is not None and (owner_host != host or _alive(int(pid))):
            continue
        if cand.is_dir() and not cand.is_symlink():
            shutil.rmtree(cand, ignore_errors=True)
        else:
            cand.unlink(missing_ok=True)
        removed.append(cand)
    if removed:
        logging.getLogger("sxtflow").info(
            "removed %d stale temporary file(s) of %s left by a killed run", len(removed), path
        )
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any exception the temporary file (or directory) is removed and ``path`` is left
    as it was, so nothing already computed is overwritten with garbage. Temporaries that a
    killed run left for the same ``path`` are removed first (:func:`remove_stale_temporaries`).

    Raises
    ------
    OutputError
        ``path`` is an existing directory (file output) or file (``directory=True``), or the
        write fails for want of space or permission (the error names ``path`` and why).
    """
    path = Path(path)
    if not directory and path.is_dir():
        raise OutputError(path, "the output is an existing directory; give a file name")
    if directory and (path.is_file() or path.is_symlink() and not path.is_dir()):
        raise OutputError(path, "the output is an existing file; a directory is written here")
    prefix = f".{path.name}.{_owner()}."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
            shutil.rmtree(tmp)
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp" + path.suffix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
    except OSError as exc:
        reason = _write_failure(exc)
        if reason is None:
            raise
        raise _output_error(path, reason) from exc
    old = None
    try:
        yield tmp
        if tmp.is_file():  # mkstemp makes 0600 files; give outputs the usual umask mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if directory and path.exists():
            # move the old store aside and drop it after the rename: a reader never finds
            # the path missing for longer than two renames
            old = Path(str(tmp)[: -len(".tmp")] + ".old.tmp")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)
        reason = _write_failure(exc)
        if reason is None:
            raise
        raise _output_error(path, reason) from exc


def check_finite(data: np.ndarray, path=None, what: str = "data") -> None:
    """Raise :class:`InputError` if ``data`` holds NaN or infinite values."""
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        n = int(bad.sum())
        if n:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(path, f"{what} contains {n} NaN/inf values (first at index {idx})")


#: Physically possible linear absorption coefficients in µm⁻¹. The densest elements absorb
#: about 30 µm⁻¹ anywhere between 250 and 1000 eV (osmium, iridium, tungsten; Henke tables via
#: xraydb); cells absorb 0.1–1.5 µm⁻¹ in the water window. The bounds leave room for
#: reconstruction noise and ringing (negative values included). Values beyond them are not LAC
#: in µm⁻¹: raw counts, another unit (cm⁻¹ is 10⁴ × larger), or a corrupt file.
LAC_RANGE_PER_UM = (-100.0, 100.0)


def check_lac(data: np.ndarray, path=None) -> None:
    """Refuse a tomogram whose values are not finite LAC in µm⁻¹ (:data:`LAC_RANGE_PER_UM`).

    Raises
    ------
    InputError
        Naming ``path``, the offending range and what to do.
    """
    check_finite(data, path, "tomogram")
    if data.size == 0:
        raise InputError(path, "tomogram is empty")
    lo, hi = float(np.min(data)), float(np.max(data))
    if lo < LAC_RANGE_PER_UM[0] or hi > LAC_RANGE_PER_UM[1]:
        raise InputError(
            path,
            f"values {lo:.4g}..{hi:.4g} are outside the physical LAC range "
            f"{LAC_RANGE_PER_UM[0]:g}..{LAC_RANGE_PER_UM[1]:g} µm⁻¹ (cells 0.1-1.5, the densest "
            "elements ~30): not LAC in µm⁻¹ (raw counts? another unit?); calibrate the "
            "tomogram to µm⁻¹ (ice ≈ 0.1) or give the projections",
        )


# --------------------------------------------------------------------------- volumes

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


def read_volume(path: str | os.PathLike, voxel_nm=None, *, allow_nan: bool = False) -> Volume:
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
    if voxel_nm is None:
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
                import logging

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


# --------------------------------------------------------------------------- AmiraMesh

_AMIRA_TYPES = {
    "byte": np.uint8,
    "ushort": np.uint16,
    "short": np.int16,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
}


def _amira_rle(raw: bytes, n: int) -> np.ndarray:
    """Decode Amira's HxByteRLE: a control byte c; c & 0x80: (c & 0x7f) literal bytes
    follow; else the next byte is repeated c times."""
    out = np.empty(n, dtype=np.uint8)
    i = j = 0
    mv = memoryview(raw)
    while j < n:
        if i >= len(raw):
            raise ValueError(f"RLE data end after {j} of {n} values")
        c = raw[i]
        i += 1
        k = c & 0x7F
        if k == 0:
            continue
        if c & 0x80:
            out[j : j + k] = np.frombuffer(mv[i : i + k], dtype=np.uint8)
            i += k
        else:
            out[j : j + k] = raw[i]
            i += 1
        j += k
    return out


def read_amira(path: str | os.PathLike) -> tuple[np.ndarray, tuple | None, dict]:
    """Read an AmiraMesh lattice (``.am``, also ``.rec``/``.labels``): a scalar volume.

    Handles ``# AmiraMesh BINARY-LITTLE-ENDIAN 2.1``, ``# AmiraMesh BINARY 2.1``
    (big-endian), ``# AmiraMesh 3D ASCII 2.0/2.1`` and ``# Avizo`` headers; a ``define
    Lattice nx ny nz``; one lattice field of type byte/ushort/short/int/float/double,
    raw, ``HxZip`` (zlib) or ``HxByteRLE`` encoded.

    Returns
    -------
    data : ndarray, shape (z, y, x)
        Label fields (``byte``) come out as uint8.
    voxel_nm : tuple of 3 floats or None
        From ``BoundingBox xmin xmax ymin ymax zmin zmax`` (centres of the first and last
        voxels, so voxel = extent / (n − 1)) in the ``Units { Coordinates }`` unit. None
        without a bounding box, and None when the header has no ``Units``: Amira's
        coordinates are unitless then (µm, nm and Å all occur), so the size is not guessed;
        the unitless voxel extent is kept in ``meta["amira_bbox_unitless"]``.
    meta : dict
        ``format``, ``amira_field`` and ``kind`` (``"labels"`` for label fields).
    """
    path = Path(path)
    raw = path.read_bytes()
    first = raw.split(b"\n", 1)[0]
    if not (first.startswith(b"# AmiraMesh") or first.startswith(b"# Avizo")):
        raise InputError(path, "not an AmiraMesh file")
    ascii_ = b"ASCII" in first
    big = b"BINARY" in first and b"LITTLE" not in first
    marker = re.search(rb"\n\s*@1\s*\n", raw)
    if marker is None:
        raise InputError(path, "AmiraMesh file without a data section ('@1')")
    try:
        header = raw[: marker.start()].decode("utf-8")
    except UnicodeDecodeError:
        header = raw[: marker.start()].decode("latin-1")
    body = raw[marker.end() :]
    m = re.search(r"define\s+Lattice\s+(\d+)\s+(\d+)\s+(\d+)", header)
    if m is None:
        raise InputError(path, "AmiraMesh file without 'define Lattice nx ny nz'")
    nx, ny, nz = (int(v) for v in m.groups())
    fields = re.findall(
        r"Lattice\s*\{\s*(\w+)(?:\[(\d+)\])?\s+(\w+)\s*\}\s*@(\d+)(\([^)]*\))?", header
    )
    if not fields:
        raise InputError(path, "AmiraMesh file without a 'Lattice { type name } @1' field")
    ftype, ncomp, fname, _, enc = next((f for f in fields if f[3] == "1"), fields[0])
    if ncomp and int(ncomp) != 1:
        raise InputError(path, f"AmiraMesh field {fname!r} has {ncomp} components; need a scalar")
    if ftype not in _AMIRA_TYPES:
        raise InputError(path, f"AmiraMesh data type {ftype!r} not supported")
    dtype = np.dtype(_AMIRA_TYPES[ftype]).newbyteorder(">" if big else "<")
    n = nx * ny * nz
    if ascii_:
        text = body.split(b"@", 1)[0]
        data = np.array(text.split(), dtype=np.float64)
        if data.size < n:
            raise InputError(path, f"AmiraMesh ASCII data hold {data.size} of {n} values")
        data = data[:n].astype(dtype.newbyteorder("="))
    else:
        nbytes = n * dtype.itemsize
        enc = enc.strip("()")
        if enc.startswith("HxZip"):
            size = int(enc.split(",")[1])
            if len(body) < size:
                raise InputError(path, f"AmiraMesh file truncated: {len(body)} of {size} bytes")
            buf = zlib.decompress(body[:size])
        elif enc.startswith("HxByteRLE"):
            if dtype.itemsize != 1:
                raise InputError(path, "HxByteRLE encoding is only defined for byte data")
            buf = _amira_rle(body, n).tobytes()
        elif enc:
            raise InputError(path, f"AmiraMesh encoding {enc!r} not supported")
        else:
            buf = body[:nbytes]
        if len(buf) < nbytes:
            raise InputError(path, f"AmiraMesh file truncated: {len(buf)} of {nbytes} data bytes")
        data = np.frombuffer(buf[:nbytes], dtype=dtype).astype(dtype.newbyteorder("="))
    data = data.reshape(nz, ny, nx)
    meta: dict = {"format": "amira", "amira_field": fname}
    if ftype == "byte" or "Materials" in header or fname.lower().startswith("label"):
        meta["kind"] = "labels" if ftype == "byte" else meta.get("kind", "lac")
    voxel = None
    bb = re.search(r"BoundingBox\s+([-+\d.eE\s]+?),?\s*\n", header)
    if bb:
        vals = [float(v) for v in bb.group(1).replace(",", " ").split()]
        if len(vals) == 6:
            unit_m = re.search(r"Coordinates\s+\"([^\"]+)\"", header)
            ext = np.array([vals[1] - vals[0], vals[3] - vals[2], vals[5] - vals[4]])
            counts = np.array([nx, ny, nz], dtype=float)
            vx, vy, vz = ext / np.maximum(counts - 1, 1)
            if nz == 1:
                vz = vx
            if unit_m:
                scale = _unit_scale(unit_m.group(1), "um", path, "coordinate")
                voxel = (float(vz) * scale, float(vy) * scale, float(vx) * scale)
            else:  # units are never guessed: the sample sheet must give voxel_nm
                meta["amira_bbox_unitless"] = [float(vz), float(vy), float(vx)]
    return data, voxel, meta


def write_amira(path: str | os.PathLike, volume: Volume, *, ascii: bool = False) -> Path:
    """Write a volume as AmiraMesh 2.1 (binary little-endian or ASCII), BoundingBox in µm.

    uint8 data are written as ``byte`` (a label field), everything else as ``float``.
    """
    path = Path(path)
    data = np.asarray(volume.data)
    label = data.dtype == np.uint8
    arr = data if label else data.astype("<f4")
    nz, ny, nx = arr.shape
    vz, vy, vx = (v / 1000.0 for v in volume.voxel_nm)
    bbox = (0, (nx - 1) * vx, 0, (ny - 1) * vy, 0, (nz - 1) * vz)
    kind = "byte Labels" if label else "float Data"
    head = (
        ("# AmiraMesh 3D ASCII 2.1" if ascii else "# AmiraMesh BINARY-LITTLE-ENDIAN 2.1")
        + f"\n\ndefine Lattice {nx} {ny} {nz}\n\nParameters {{\n"
        + '    Units {\n        Coordinates "µm"\n    }\n'
        + "    BoundingBox "
        + " ".join(f"{b:.9g}" for b in bbox)
        + ",\n"
        + '    CoordType "uniform"\n}\n\n'
        + f"Lattice {{ {kind} }} @1\n\n# Data section follows\n@1\n"
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(head.encode("utf-8"))
            if ascii:
                fmt = "%d" if label else "%.9g"
                np.savetxt(fh, arr.reshape(-1, 1), fmt=fmt)
            else:
                fh.write(np.ascontiguousarray(arr).tobytes())
            fh.write(b"\n")
    return path


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


def write_volume(path: str | os.PathLike, volume: Volume) -> Path:
    """Write a volume atomically as MRC (voxel size in the header, metadata in a label).

    float64 is stored as float32, bool as uint8; int64 label volumes must fit int16/uint16.
    Metadata go to a JSON sidecar ``<path>.json`` as well, so nothing is truncated; its CRC-32
    is recorded in an MRC label, so a reader can tell a stale sidecar (an earlier write's, e.g.
    after a killed job) and a volume without metadata removes one. The header's labels carry no
    time (``Created by sxtflow <version>``), so the same volume gives the same bytes.
    """
    import mrcfile

    from . import __version__

    path = Path(path)
    data = volume.data
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    elif data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype.kind in "iu" and data.dtype.itemsize > 2:
        if data.size and (data.min() < 0 or data.max() > 65535):
            raise ValueError(f"integer volume out of uint16 range for {path}")
        data = data.astype(np.uint16)
    sidecar = path.with_name(path.name + ".json")
    text = _json_text(volume.meta) if volume.meta else None
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data))
            z, y, x = volume.voxel_nm
            mrc.voxel_size = (x * 10.0, y * 10.0, z * 10.0)  # Å, (x, y, z)
            mrc.header.label[0] = f"Created by sxtflow {__version__}"  # mrcfile's has the time
            mrc.header.nlabl = 1
            label = "sxtflow " + json.dumps(volume.meta, separators=(",", ":"), default=float)
            if len(label) <= 80:
                mrc.add_label(label)
            if text is not None:
                mrc.add_label(f"{_SIDECAR_LABEL}{zlib.crc32(text.encode()):08x}")
    if text is not None:
        with atomic_path(sidecar) as tmp:
            tmp.write_text(text)
    elif sidecar.is_file():
        sidecar.unlink()  # a sidecar without metadata to hold is an earlier write's
    return path


def create_zarr_array(directory: str | os.PathLike, name: str, shape, chunks, dtype="float32"):
    """Create a chunked array ``name`` in a new zarr store at ``directory`` (zarr 2 or 3).

    Every chunk is stored, also one equal to the fill value (zarr skips those by default), so
    a complete store holds exactly one file per chunk and a missing chunk is detectable.
    Used inside :func:`atomic_path` (``directory=True``) and closed by :func:`seal_store`, so a
    store appears only when complete.
    """
    import zarr

    root = zarr.open_group(str(directory), mode="w")
    if hasattr(root, "create_array"):  # zarr 3
        return root.create_array(
            name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
            config={"write_empty_chunks": True},
        )  # fmt: skip
    return root.create_dataset(
        name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, write_empty_chunks=True
    )


# --------------------------------------------------------------------------- store integrity

#: The completion record of a zarr store, written last (:func:`seal_store`).
INTEGRITY_RECORD = "sxtflow_integrity.json"
_INTEGRITY_FORMAT = "sxtflow-store-integrity/1"
_ZARR_META = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _store_files(path: Path) -> dict[str, list]:
    """``{relative path: [bytes, CRC-32 hex]}`` of every file of a store but its record
    (and Snakemake's ``.snakemake_timestamp`` marker of a ``directory()`` output)."""
    files = {}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_file() and rel != INTEGRITY_RECORD and not rel.startswith(".snakemake"):
            crc = 0
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    crc = zlib.crc32(chunk, crc)
            files[rel] = [f.stat().st_size, f"{crc:08x}"]
    return files


def _chunk_files(files, name: str) -> int:
    return sum(1 for f in files if f.startswith(f"{name}/") and Path(f).name not in _ZARR_META)


def _files_checksum(files: dict) -> str:
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def seal_store(directory: str | os.PathLike) -> dict:
    """Write the completion record of a finished zarr store (call it last, before the rename).

    The record (``sxtflow_integrity.json`` at the store's root) holds, per array, its shape,
    chunk shape, dtype and number of chunks, and, per file, its size and CRC-32, with a
    SHA-256 over that list. A store without it is partial (a killed write); a store whose
    files differ from it is damaged. :func:`verify_store` checks both.

    Returns
    -------
    dict
        The record.
    """
    import zarr

    directory = Path(directory)
    root = zarr.open_group(str(directory), mode="r")
    arrays = {}
    for name, arr in sorted(root.arrays()):
        arrays[name] = {
            "shape": list(arr.shape),
            "chunks": list(arr.chunks),
            "dtype": str(arr.dtype),
            "n_chunks": int(
                np.prod([-(-n // c) for n, c in zip(arr.shape, arr.chunks, strict=True)])
            ),
        }
    files = _store_files(directory)
    for name, spec in arrays.items():
        n = _chunk_files(files, name)
        if n != spec["n_chunks"]:  # every chunk is stored (create_zarr_array): a write is missing
            raise ValueError(f"{directory}: array {name!r} has {n} of {spec['n_chunks']} chunks")
    record = {
        "format": _INTEGRITY_FORMAT,
        "arrays": arrays,
        "files": files,
        "checksum": _files_checksum(files),
    }
    write_json(directory / INTEGRITY_RECORD, record)
    return record


def verify_store(path: str | os.PathLike) -> dict:
    """Check a zarr store against its completion record (:func:`seal_store`); return the record.

    Reads every file once (memory: 4 MiB at a time): shapes, the number of chunks, every file's
    size and CRC-32 and the record's checksum must agree.

    Raises
    ------
    InputError
        Naming the store and what is wrong: no record (a partial store: rerun the step that
        makes it), a missing, extra or changed chunk (a damaged store).
    """
    import zarr

    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "store does not exist" if not path.exists() else "not a directory")
    rec_path = path / INTEGRITY_RECORD
    if not rec_path.is_file():
        raise InputError(
            path,
            f"no completion record ({INTEGRITY_RECORD}, written last): a partial store, left "
            "by a killed or failed write (or written by another tool); rerun the step that makes it",
        )
    record = read_json(rec_path)
    if not isinstance(record, dict) or record.get("format") != _INTEGRITY_FORMAT:
        raise InputError(rec_path, f"not a {_INTEGRITY_FORMAT} completion record")
    want = record.get("files", {})
    if _files_checksum(want) != record.get("checksum"):
        raise InputError(rec_path, "the completion record's checksum does not match its file list")
    damaged = "the store is damaged: rerun the step that makes it"
    try:
        root = zarr.open_group(str(path), mode="r")
        for name, spec in record.get("arrays", {}).items():
            arr = root[name]
            got = {"shape": list(arr.shape), "chunks": list(arr.chunks), "dtype": str(arr.dtype)}
            if any(got[k] != spec[k] for k in got):
                raise InputError(
                    path, f"array {name!r} is {got}, its record says {spec}; {damaged}"
                )
            n = _chunk_files(want, name)
            if n != spec["n_chunks"]:
                raise InputError(
                    path, f"array {name!r} records {n} chunk files for {spec['n_chunks']} chunks"
                )
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable zarr store ({type(exc).__name__}: {exc})") from exc
    have = _store_files(path)
    missing = sorted(set(want) - set(have))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(path, f"chunk file {missing[0]}{more} is missing; {damaged}")
    extra = sorted(set(have) - set(want))
    if extra:
        raise InputError(path, f"file {extra[0]} is not in the completion record; {damaged}")
    changed = sorted(f for f in want if have[f] != want[f])
    if changed:
        f = changed[0]
        raise InputError(
            path,
            f"chunk file {f} has changed ({have[f][0]} bytes, CRC-32 {have[f][1]}; recorded "
            f"{want[f][0]} bytes, {want[f][1]}); {damaged}",
        )
    return record


def store_token(path: str | os.PathLike) -> tuple:
    """Identity of a sealed store: its record's inode, change time and checksum.

    A store replaced by another write (even with equal content) gets another token, so a
    step that read it can check, before it writes its output, that it read one store only.
    """
    rec = Path(path) / INTEGRITY_RECORD
    try:
        st = rec.stat()
        checksum = read_json(rec).get("checksum")
    except (OSError, InputError, AttributeError):
        return (None,)
    return (st.st_dev, st.st_ino, st.st_ctime_ns, checksum)


# --------------------------------------------------------------------------- projections

#: Largest fraction of non-positive raw intensities that is repaired (clipped, logged)
#: rather than refused. Above it the file is treated as corrupt (or not intensities).
MAX_NONPOSITIVE_FRACTION = 0.01

_ANGLE_SUFFIXES = (".tlt", ".rawtlt", ".angles")


def read_projections(
    path: str | os.PathLike, pixel_nm: float | None = None, *, angles=None
) -> Projections:
    """Read a tilt series; the format is detected from the file's content.

    Supported formats
    -----------------
    * Data Exchange HDF5: ``exchange/data``, ``data_white``, ``data_dark``, ``theta``.
      ``theta`` is read in radians if it has ``units="rad"`` or all |θ| ≤ 2π and in
      degrees otherwise (the ``units`` attribute wins when present).
    * NeXus NXtomo HDF5 (e.g. ALBA Mistral): ``/entry/data/data`` or
      ``/entry/instrument/detector/data`` with ``image_key`` (0 projection, 1 flat,
      2 dark, 3 invalid/skipped) and ``/entry/sample/rotation_angle`` (degrees unless
      its ``units`` say otherwise); pixel size from ``x_pixel_size`` (metres unless
      ``units`` say otherwise). Flats taken before and after (or during) the scan keep
      their place in ``meta["flat_positions"]`` and are interpolated per projection by
      :func:`sxtflow.reconstruct.normalize`.
    * MRC/ST stacks (IMOD): ``(angles, rows, cols)`` with the angles, in degrees one per
      line, in ``<stem>.tlt`` (preferred) or ``<stem>.rawtlt`` beside the stack; pixel
      size from the header (Å).
    * TIFF stacks: ``(angles, rows, cols)`` with angles in degrees in ``<stem>.tlt`` or
      ``<stem>.angles`` beside the stack.
    * Zeiss/Xradia ``.txrm`` tilt series and ``.xrm`` single images (Diamond B24, ALBA
      Mistral; OLE2 compound files), read with ``txrm2tiff``: ``ImageInfo/Angles``
      (degrees), ``ImageInfo/PixelSize`` (µm), the images in the row order txrm2tiff and
      XRM Data Explorer show them, and the reference image ``ReferenceData/Image`` (if
      present) as the flat; see :func:`_read_txrm`.

    MRC and TIFF stacks carry no flats: if their largest value is ≤ 2 they are taken as
    already normalised transmission (``meta["normalized"] = True``); otherwise they are
    raw counts and :func:`sxtflow.reconstruct.reconstruct` will ask for flats.

    Parameters
    ----------
    path : path-like
    pixel_nm : float, optional
        Detector pixel size at the sample in nm; overrides the file.
    angles : array_like, optional
        Projection angles in **degrees**; overrides the file's angles (or replaces a
        missing angle file).

    Returns
    -------
    Projections

    Raises
    ------
    InputError
        Missing/truncated/corrupt file, unknown layout, angle count ≠ projection count,
        flats/darks of another shape, NaN/inf values, or more than
        :data:`MAX_NONPOSITIVE_FRACTION` of non-positive intensities. A smaller share of
        non-positive values is left to :func:`sxtflow.reconstruct.normalize`, which clips
        them to a tiny transmission and logs how many (``meta["n_nonpositive"]``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    fmt = _sniff(path)
    try:
        # the file's own pixel size is read even when one is given, to compare them
        if fmt == "hdf5":
            import h5py

            with h5py.File(path, "r") as fh:
                if "exchange/data" in fh:
                    parts = _read_dxchange(fh, path, None)
                else:
                    parts = _read_nxtomo(fh, path, None)
        elif fmt in ("mrc", "tiff"):
            parts = _read_stack(path, fmt, None, angles is not None)
        elif fmt == "txrm":
            parts = _read_txrm(path, None, angles is not None)
        else:
            raise InputError(path, f"{fmt} files cannot hold a tilt series here")
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt
        raise InputError(path, f"cannot read {fmt.upper()} file ({exc})") from exc
    data, theta, flats, darks, pix, meta = parts
    if pix is not None and not (np.isfinite(pix) and pix > 0):
        pix = None
    if pixel_nm is not None:
        if pix is not None:
            meta["pixel_nm_header"] = float(pix)
            if abs(float(pixel_nm) / pix - 1) > VOXEL_MISMATCH_WARN:
                import logging

                logging.getLogger("sxtflow").warning(
                    "%s: the sample sheet's voxel_nm %g nm differs by more than %g %% from "
                    "the file's pixel size %g nm; using the sheet's",
                    path,
                    float(pixel_nm),
                    100 * VOXEL_MISMATCH_WARN,
                    pix,
                )
        pix = float(pixel_nm)
    if angles is not None:
        theta = np.deg2rad(np.asarray(angles, dtype=float).ravel())
    meta["format"] = meta.get("format", fmt)
    check_finite(data, path, "projections")
    for name, arr in (("flats", flats), ("darks", darks)):
        if arr is not None:
            check_finite(np.asarray(arr, dtype=np.float32), path, name)
    if not np.all(np.isfinite(theta)):
        raise InputError(path, "projection angles contain NaN/inf")
    _check_intensities(data, path, meta)
    try:
        return Projections(data, theta, flats, darks, pix, meta)
    except ValueError as exc:
        raise InputError(path, str(exc)) from exc


def _read_txrm(path: Path, pixel_nm, have_angles: bool):
    """Zeiss/Xradia ``.txrm``/``.xrm`` (OLE2 compound file) through ``txrm2tiff``.

    * images: ``ImageData<k>/Image<n>`` (uint16 or float32, ``ImageInfo/DataType``),
      returned as float32 and flipped along the rows like ``txrm2tiff``'s ``get_output``
      (its TIFFs, and XRM Data Explorer, show them that way), so a file read here and its
      ``txrm2tiff`` conversion give the same tomogram;
    * angles: ``ImageInfo/Angles`` (degrees, one per image taken) → radians;
    * pixel size: ``ImageInfo/PixelSize`` (µm) → nm;
    * flat: ``ReferenceData/Image`` when present (flipped the same way). Its exposure
      (``ReferenceData/ExpTime`` or ``ReferenceData/ImageInfo/ExpTime``) is matched to the
      projections' (``ImageInfo/ExpTimes``) as ``txrm2tiff`` does when it applies a
      reference: with one exposure for all projections the flat is scaled by
      ``exposure / reference exposure`` (``meta["flat_exposure_scale"]``); with several,
      each projection is scaled to the reference exposure (``meta["exposure_scaled"]``).
    * no darks (Xradia files hold none); mosaics are refused.
    """
    try:
        import olefile
        import txrm2tiff
    except ImportError as exc:
        raise InputError(
            path,
            f"reading Zeiss TXRM/XRM files needs the 'txrm2tiff' package ({exc}); "
            "install it with: pip install txrm2tiff (or conda install -c conda-forge txrm2tiff)",
        ) from exc
    import logging

    with open(path, "rb") as fh:
        # olefile first: its errors name the OLE problem (txrm2tiff's can hide it)
        with olefile.OleFileIO(fh) as ole:
            if not ole.exists("ImageInfo"):
                raise InputError(
                    path, "OLE2 file without an 'ImageInfo' storage: not a Zeiss/Xradia TXRM/XRM"
                )
            missing = [k for k in ("Version", "ImageInfo/ImagesTaken") if not ole.exists(k)]
            if missing:
                raise InputError(path, f"Zeiss TXRM/XRM file without the stream(s) {missing}")
            file_version = np.frombuffer(ole.openstream("Version").read()[:4], "<f4")
        fh.seek(0)
        try:
            txrm = txrm2tiff.open_txrm(fh, load_images=False, load_reference=False, strict=True)
        except Exception as exc:
            raise InputError(
                path,
                f"txrm2tiff {txrm2tiff.__version__} cannot open this Xradia file "
                f"(Version stream {file_version.tolist()}; it reads versions 3 and 5): {exc}",
            ) from exc
        try:
            parts = _txrm_parts(txrm, path, pixel_nm, have_angles, txrm2tiff.__version__)
            issues = [str(msg) for _, msg in (getattr(txrm.ole, "parsing_issues", []) or [])]
        finally:
            txrm.close()
    if issues:  # tolerated by olefile and nothing came out short: keep, but say so
        parts[-1]["ole_defects"] = issues
        logging.getLogger("sxtflow").warning("%s: OLE defects %s", path, "; ".join(issues))
    return parts


def _txrm_parts(txrm, path: Path, pixel_nm, have_angles: bool, version: str):
    def issues() -> str:
        found = [str(msg) for _, msg in (getattr(txrm.ole, "parsing_issues", []) or [])]
        return f"; OLE defects: {'; '.join(found)}" if found else ""

    info = txrm.image_info
    n_taken = int(info["ImagesTaken"][0])
    if n_taken < 1:
        raise InputError(path, "ImageInfo/ImagesTaken is 0: the file holds no images")
    try:
        mosaic = bool(txrm.is_mosaic)
    except Exception:  # version 5 files without the mosaic streams are not mosaics
        mosaic = False
    if mosaic:
        raise InputError(path, "Zeiss mosaic (stitched) image: not a tilt series")
    dtype = txrm.image_dtype
    if dtype is None:
        raise InputError(path, "ImageInfo/DataType missing or unknown: cannot decode the images")
    images = txrm.get_images()
    rows, cols = (int(info["ImageHeight"][0]), int(info["ImageWidth"][0]))
    if images is None or images.ndim != 3 or images.shape[0] != n_taken:
        got = 0 if images is None or images.ndim != 3 else images.shape[0]
        raise InputError(
            path,
            f"only {got} of {n_taken} images (ImageInfo/ImagesTaken) could be read as "
            f"{rows}×{cols} {np.dtype(dtype.value).name}: truncated or corrupt file{issues()}",
        )
    data = np.ascontiguousarray(np.flip(images, axis=1), dtype=np.float32)

    theta = np.zeros(n_taken)
    if not have_angles:
        if "Angles" not in info:
            raise InputError(path, "no 'ImageInfo/Angles' stream: projection angles unknown")
        deg = np.asarray(info["Angles"], dtype=float).ravel()
        if deg.size != n_taken:
            planned = int(info.get("NoOfImages", [n_taken])[0])
            note = f" (an interrupted scan: {planned} planned)" if planned != n_taken else ""
            raise InputError(
                path, f"{deg.size} angles in ImageInfo/Angles for {n_taken} images{note}"
            )
        theta = np.deg2rad(deg)

    meta: dict = {
        "format": "txrm",
        "reader": f"txrm2tiff {version}",
        "xradia_version": float(txrm.version),
        "source_dtype": np.dtype(dtype.value).name,
        "row_order": "flipped as txrm2tiff/XRM Data Explorer show it",
    }
    if pixel_nm is None and info.get("PixelSize"):
        # shortest decimal of the stored float32 (0.03 µm → 30 nm, not 29.9999993)
        pix_um = float(np.format_float_positional(np.float32(info["PixelSize"][0]), unique=True))
        if np.isfinite(pix_um) and pix_um > 0:
            pixel_nm = pix_um * 1e3
    if info.get("Energy") and np.isfinite(info["Energy"][0]) and info["Energy"][0] > 0:
        meta["energy_eV"] = float(info["Energy"][0])
    exposures = np.asarray(info.get("ExpTimes") or info.get("ExpTime") or [], dtype=float)
    if exposures.size >= n_taken:
        exposures = exposures[:n_taken]
        uniform = bool(np.all(exposures == exposures[0]))
        meta["exposure_s"] = float(exposures[0]) if uniform else exposures.tolist()
    else:
        exposures, uniform = None, True

    flats = None
    if txrm.has_reference:
        ref = txrm.get_reference()
        if ref is None or ref.shape != (rows, cols):
            shape = None if ref is None else ref.shape
            raise InputError(
                path,
                f"ReferenceData/Image could not be read as {rows}×{cols} (got {shape}){issues()}",
            )
        flats = np.ascontiguousarray(np.flip(ref, axis=0), dtype=np.float32)[None]
        ref_exp = txrm.reference_exposure
        if exposures is not None and ref_exp and np.isfinite(ref_exp) and ref_exp > 0:
            meta["reference_exposure_s"] = float(ref_exp)
            if uniform and exposures[0] != ref_exp:
                scale = float(exposures[0]) / float(ref_exp)
                flats = flats * np.float32(scale)
                meta["flat_exposure_scale"] = scale
            elif not uniform and np.all(exposures > 0):
                data *= (float(ref_exp) / exposures).astype(np.float32)[:, None, None]
                meta["exposure_scaled"] = "projections scaled to the reference exposure"
    return data, theta, flats, None, pixel_nm, meta


def _check_intensities(data: np.ndarray, path, meta: dict) -> None:
    """Refuse mostly non-positive intensities; record (and log) a few."""
    n_bad = int(np.count_nonzero(~(data > 0)))
    if n_bad == 0:
        return
    meta["n_nonpositive"] = n_bad
    frac = n_bad / data.size
    if frac > MAX_NONPOSITIVE_FRACTION:
        raise InputError(
            path,
            f"{100 * frac:.1f}% of the projection values are zero or negative (more than "
            f"{100 * MAX_NONPOSITIVE_FRACTION:g}%): not intensities, or a corrupt file",
        )
    import logging

    logging.getLogger("sxtflow").warning(
        "%s: %d zero/negative intensities (%.3f%%); they will be clipped to a tiny "
        "transmission during normalisation",
        path,
        n_bad,
        100 * frac,
    )


def _unit_scale(unit, default: str, path, what: str) -> float:
    """Factor to nanometres for a length unit string."""
    if isinstance(unit, bytes):
        unit = unit.decode()
    unit = str(unit or default).strip().lower().replace("micron", "um")
    table = {
        "nm": 1.0,
        "nanometer": 1.0,
        "nanometre": 1.0,
        "um": 1e3,
        "µm": 1e3,
        "μm": 1e3,
        "micrometer": 1e3,
        "micrometre": 1e3,
        "mm": 1e6,
        "m": 1e9,
        "meter": 1e9,
        "metre": 1e9,
        "a": 0.1,
        "å": 0.1,
        "angstrom": 0.1,
    }
    if unit not in table:
        raise InputError(path, f"unknown {what} unit {unit!r}")
    return table[unit]


def _attr_str(obj, name: str, default: str = "") -> str:
    value = obj.attrs.get(name, default)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
        value = value.decode() if isinstance(value, bytes) else str(value)
    return str(value)


def _read_dxchange(fh, path, pixel_nm):
    data = np.asarray(fh["exchange/data"][...], dtype=np.float32)
    flats = fh["exchange/data_white"][...] if "exchange/data_white" in fh else None
    darks = fh["exchange/data_dark"][...] if "exchange/data_dark" in fh else None
    if "exchange/theta" not in fh:
        raise InputError(path, "no 'exchange/theta' dataset: projection angles unknown")
    tds = fh["exchange/theta"]
    theta = np.asarray(tds[...], dtype=float).ravel()
    units = _attr_str(tds, "units")
    if units.lower().startswith("deg") or (
        not units and np.abs(theta).max(initial=0) > 2 * np.pi + 1e-6
    ):
        theta = np.deg2rad(theta)
    if pixel_nm is None:
        key = "measurement/instrument/detector/pixel_size"
        if key in fh:
            ds = fh[key]
            value = float(np.asarray(ds[...]).ravel()[0])
            pixel_nm = value * _unit_scale(_attr_str(ds, "units"), "nm", path, "pixel size")
    meta = {}
    if "sxtflow" in fh:
        meta = json.loads(fh["sxtflow"].attrs.get("meta", "{}"))
    meta["format"] = "dxchange"
    return data, theta, flats, darks, pixel_nm, meta


def _nxtomo_entry(fh, path):
    """The NXtomo entry group: one whose ``definition`` is NXtomo, else ``/entry``."""
    for grp in fh.values():
        if not hasattr(grp, "keys"):
            continue
        if "definition" in grp:
            d = np.asarray(grp["definition"][()]).ravel()[0]
            d = d.decode() if isinstance(d, bytes) else str(d)
            if d.strip() == "NXtomo":
                return grp
    if "entry" in fh:
        return fh["entry"]
    raise InputError(
        path, "HDF5 file is neither Data Exchange ('exchange/data') nor NeXus NXtomo ('/entry')"
    )


def _first(grp, keys):
    for k in keys:
        if k in grp:
            return grp[k]
    return None


def _read_nxtomo(fh, path, pixel_nm):
    entry = _nxtomo_entry(fh, path)
    det = _first(entry, ["instrument/detector/data", "data/data"])
    if det is None:
        raise InputError(
            path, "NXtomo entry has no 'data/data' or 'instrument/detector/data' dataset"
        )
    if det.ndim != 3:
        raise InputError(path, f"NXtomo data must be 3D (frames, rows, cols), got {det.shape}")
    n = det.shape[0]
    key_ds = _first(entry, ["instrument/detector/image_key", "data/image_key"])
    key = np.zeros(n, dtype=int) if key_ds is None else np.asarray(key_ds[...]).astype(int).ravel()
    if key.size != n:
        raise InputError(path, f"image_key has {key.size} entries for {n} frames")
    if not np.all(np.isin(key, (0, 1, 2, 3))):
        raise InputError(path, f"image_key values {sorted(set(key.tolist()))} not in 0/1/2/3")
    ang_ds = _first(entry, ["sample/rotation_angle", "data/rotation_angle"])
    if ang_ds is None:
        raise InputError(path, "NXtomo entry has no 'sample/rotation_angle': angles unknown")
    angles = np.asarray(ang_ds[...], dtype=float).ravel()
    units = _attr_str(ang_ds, "units", "degree").lower()
    if angles.size != n:
        raise InputError(path, f"{angles.size} rotation angles for {n} frames (image_key)")
    proj_idx = np.flatnonzero(key == 0)
    if proj_idx.size == 0:
        raise InputError(path, "NXtomo file holds no projections (image_key 0)")
    data = np.asarray(det[proj_idx[0] : proj_idx[-1] + 1], dtype=np.float32)
    data = data[proj_idx - proj_idx[0]]
    flats = (
        np.asarray(det[np.flatnonzero(key == 1).tolist()], dtype=np.float32)
        if (key == 1).any()
        else None
    )
    darks = (
        np.asarray(det[np.flatnonzero(key == 2).tolist()], dtype=np.float32)
        if (key == 2).any()
        else None
    )
    theta = angles[proj_idx]
    theta = theta if units.startswith("rad") else np.deg2rad(theta)
    meta = {"format": "nxtomo"}
    if flats is not None:
        # when each flat was taken, in projection indices (k - 0.5 = after k projections):
        # flats before and after the scan are then interpolated per projection
        positions = np.searchsorted(proj_idx, np.flatnonzero(key == 1)) - 0.5
        if np.unique(positions).size > 1:
            meta["flat_positions"] = positions.tolist()
    if pixel_nm is None:
        ds = _first(entry, ["instrument/detector/x_pixel_size", "instrument/detector/pixel_size"])
        if ds is not None:
            value = float(np.asarray(ds[...]).ravel()[0])
            pixel_nm = value * _unit_scale(_attr_str(ds, "units"), "m", path, "pixel size")
    return data, theta, flats, darks, pixel_nm, meta


def read_angles(path: str | os.PathLike) -> np.ndarray:
    """Read an angle file (IMOD ``.tlt``/``.rawtlt`` or ``.angles``): degrees, one per line.

    Blank lines and ``#`` comments are ignored. Returns radians, shape (angles,).
    """
    path = Path(path)
    values = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            values.append(float(text.split()[0]))
        except ValueError as exc:
            raise InputError(path, f"line {i}: {text!r} is not an angle in degrees") from exc
    theta = np.asarray(values, dtype=float)
    if theta.size == 0:
        raise InputError(path, "angle file holds no angles")
    if not np.all(np.isfinite(theta)):
        raise InputError(path, "angle file holds NaN/inf")
    return np.deg2rad(theta)


def _angle_file(path: Path) -> Path | None:
    for suffix in _ANGLE_SUFFIXES:
        cand = path.with_suffix(suffix)
        if cand.exists():
            return cand
    return None


def _read_stack(path: Path, fmt: str, pixel_nm, have_angles: bool):
    if fmt == "mrc":
        import mrcfile

        with mrcfile.open(path, permissive=False) as mrc:
            data = np.asarray(mrc.data, dtype=np.float32)
            vs = float(mrc.voxel_size.x)  # Å; 0 or 1 Å mean "unset"
        if pixel_nm is None and np.isfinite(vs) and vs > 0 and abs(vs - 1.0) > 1e-6:
            pixel_nm = vs / 10.0
    else:
        import tifffile

        data = np.asarray(tifffile.imread(path), dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(path, f"expected a stack (angles, rows, cols), got shape {data.shape}")
    meta: dict = {"format": f"{fmt}-stack"}
    theta = np.zeros(data.shape[0])
    if not have_angles:
        afile = _angle_file(path)
        if afile is None:
            names = ", ".join(path.with_suffix(s).name for s in _ANGLE_SUFFIXES)
            raise InputError(path, f"no angle file beside the stack (looked for {names})")
        theta = read_angles(afile)
        meta["angle_file"] = str(afile)
        if theta.size != data.shape[0]:
            raise InputError(
                path, f"{theta.size} angles in {afile.name} for {data.shape[0]} projections"
            )
    finite = data[np.isfinite(data)]
    if finite.size and float(finite.max()) <= 2.0:
        meta["normalized"] = True
    return data, theta, None, None, pixel_nm, meta


def write_projections(path: str | os.PathLike, proj: Projections) -> Path:
    """Write a tilt series atomically as Data Exchange HDF5 (angles in radians).

    The file is built in memory (one more copy of the projections) and written in one go.
    """
    import io as _io

    import h5py

    path = Path(path)
    # HDF5 is built in memory and written in one go: a full disk then fails a plain write,
    # not the HDF5 library's flush (which leaves it unable to close the file, and crashes)
    image = _io.BytesIO()
    with h5py.File(image, "w") as fh:
        fh.attrs["implements"] = "exchange:measurement"
        ex = fh.create_group("exchange")
        ex.create_dataset("data", data=proj.data, chunks=(1, *proj.data.shape[1:]))
        if proj.flats is not None:
            ex.create_dataset("data_white", data=proj.flats)
        if proj.darks is not None:
            ex.create_dataset("data_dark", data=proj.darks)
        th = ex.create_dataset("theta", data=np.asarray(proj.theta, dtype=np.float64))
        th.attrs["units"] = "rad"
        if proj.pixel_nm is not None:
            ds = fh.create_dataset(
                "measurement/instrument/detector/pixel_size", data=float(proj.pixel_nm)
            )
            ds.attrs["units"] = "nm"
        grp = fh.create_group("sxtflow")
        grp.attrs["meta"] = json.dumps(proj.meta, default=_json_default)
    with atomic_path(path) as tmp:
        tmp.write_bytes(image.getbuffer())
    return path


# --------------------------------------------------------------------------- tables and JSON


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_table(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a tidy table atomically as tab-separated text (units are in column names)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return path


def read_text_table(
    path: str | os.PathLike,
    columns,
    *,
    required,
    what: str,
    empty: str,
    comment: str | None = None,
) -> pd.DataFrame:
    """Read a hand-written tab-separated table (sample sheet, label table) as strings.

    Header names and values are stripped, empty cells are ``""``; missing optional
    ``columns`` are added empty, and the result has exactly ``columns`` in that order.

    Raises
    ------
    InputError
        The file is missing or unparsable (``what`` names the table), lacks a ``required``
        column, has a column not in ``columns``, or has no rows (the ``empty`` message).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=comment)
    except Exception as exc:
        raise InputError(path, f"cannot parse as a tab-separated table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}")
    unknown = [c for c in table.columns if c not in columns]
    if unknown:
        raise InputError(
            path, f"unknown column(s) {', '.join(unknown)}; known: {', '.join(columns)}"
        )
    if table.empty:
        raise InputError(path, empty)
    for col in columns:
        if col not in table.columns:
            table[col] = ""
    return table[list(columns)].apply(lambda s: s.str.strip())


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a tab-separated table written by :func:`write_table`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:
        raise InputError(path, f"cannot read table ({exc})") from exc


def _json_text(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (numpy scalars and arrays are converted)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(_json_text(obj))
    return path


def read_json(path: str | os.PathLike):
    """Read a JSON file, raising :class:`InputError` when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "file does not exist") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc})") from exc
