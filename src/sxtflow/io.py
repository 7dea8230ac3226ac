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
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "InputError",
    "Volume",
    "Projections",
    "atomic_path",
    "read_volume",
    "read_meta",
    "create_zarr_array",
    "write_volume",
    "read_projections",
    "write_projections",
    "read_table",
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any exception the temporary file (or directory) is removed and ``path`` is left
    as it was, so nothing already computed is overwritten with garbage.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        shutil.rmtree(tmp)
    else:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
        )
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():  # mkstemp makes 0600 files; give outputs the usual umask mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if directory and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def check_finite(data: np.ndarray, path=None, what: str = "data") -> None:
    """Raise :class:`InputError` if ``data`` holds NaN or infinite values."""
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        n = int(bad.sum())
        if n:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(path, f"{what} contains {n} NaN/inf values (first at index {idx})")


# --------------------------------------------------------------------------- volumes

_MRC_SUFFIXES = {".mrc", ".rec", ".st", ".ali", ".map", ".mrcs"}
_TIFF_SUFFIXES = {".tif", ".tiff"}


def _sniff(path: Path) -> str:
    """Detect a file's format from its content (the extension is only a hint)."""
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
    if path.is_dir() or path.suffix in (".zarr",):
        return "zarr"
    if path.suffix.lower() in _MRC_SUFFIXES and len(head) >= 1024:
        return "mrc"  # old MRC files without the MAP stamp
    raise InputError(path, "unrecognised file format (expected MRC, TIFF or HDF5)")


def read_volume(path: str | os.PathLike, voxel_nm=None, *, allow_nan: bool = False) -> Volume:
    """Read a 3D volume (MRC/REC or TIFF stack) with its voxel size.

    Parameters
    ----------
    path : path-like
    voxel_nm : float or 3-tuple, optional
        Voxel size in nm. Overrides the header; required when the file has none.
    allow_nan : bool
        If false (default), NaN/inf values are an error.

    Returns
    -------
    Volume
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    fmt = _sniff(path)
    meta: dict = {}
    header_voxel = None
    try:
        if fmt == "mrc":
            import mrcfile

            with mrcfile.open(path, permissive=False, header_only=False) as mrc:
                data = np.asarray(mrc.data)
                vs = mrc.voxel_size
                header_voxel = tuple(float(vs[a]) / 10.0 for a in ("z", "y", "x"))
                for label in mrc.header.label[: int(mrc.header.nlabl)]:
                    text = bytes(label).decode("ascii", "replace").strip()
                    if text.startswith("sxtflow "):
                        with contextlib.suppress(json.JSONDecodeError):
                            meta.update(json.loads(text[len("sxtflow ") :]))
            sidecar = path.with_name(path.name + ".json")
            if sidecar.exists():
                meta.update(read_json(sidecar))
        elif fmt == "tiff":
            import tifffile

            data = tifffile.imread(path)
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
    if voxel_nm is None:
        if header_voxel is None or not all(v > 0 for v in header_voxel):
            raise InputError(path, "no voxel size in the header; give voxel_nm in the sample sheet")
        voxel_nm = header_voxel
    return Volume(np.ascontiguousarray(data), voxel_nm, meta)


def read_meta(path: str | os.PathLike) -> dict:
    """Metadata of a volume written by :func:`write_volume` (its JSON sidecar), without the data."""
    sidecar = Path(path).with_name(Path(path).name + ".json")
    return read_json(sidecar) if sidecar.exists() else {}


def write_volume(path: str | os.PathLike, volume: Volume) -> Path:
    """Write a volume atomically as MRC (voxel size in the header, metadata in a label).

    float64 is stored as float32, bool as uint8; int64 label volumes must fit int16/uint16.
    Metadata go to a JSON sidecar ``<path>.json`` as well, so nothing is truncated.
    """
    import mrcfile

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
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data))
            z, y, x = volume.voxel_nm
            mrc.voxel_size = (x * 10.0, y * 10.0, z * 10.0)  # Å, (x, y, z)
            label = "sxtflow " + json.dumps(volume.meta, separators=(",", ":"), default=float)
            if len(label) <= 80:
                mrc.add_label(label)
    if volume.meta:
        write_json(path.with_name(path.name + ".json"), volume.meta)
    return path


def create_zarr_array(directory: str | os.PathLike, name: str, shape, chunks, dtype="float32"):
    """Create a chunked array ``name`` in a new zarr store at ``directory`` (zarr 2 or 3).

    Used inside :func:`atomic_path` (``directory=True``) so a store appears only when complete.
    """
    import zarr

    root = zarr.open_group(str(directory), mode="w")
    if hasattr(root, "create_array"):  # zarr 3
        return root.create_array(name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype)
    return root.create_dataset(name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype)


# --------------------------------------------------------------------------- projections


def read_projections(path: str | os.PathLike, pixel_nm: float | None = None) -> Projections:
    """Read a tilt series from Data Exchange HDF5 (``exchange/data``, ``data_white``,
    ``data_dark``, ``theta``).

    ``theta`` is read in radians if ``exchange/theta`` has ``units="rad"`` or all |θ| ≤ 2π
    and degrees otherwise (the ``units`` attribute wins when present).
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    if _sniff(path) != "hdf5":
        raise InputError(path, "not an HDF5 file (expected Data Exchange projections)")
    try:
        with h5py.File(path, "r") as fh:
            if "exchange/data" not in fh:
                raise InputError(path, "no 'exchange/data' dataset: not a Data Exchange file")
            data = np.asarray(fh["exchange/data"][...], dtype=np.float32)
            flats = fh["exchange/data_white"][...] if "exchange/data_white" in fh else None
            darks = fh["exchange/data_dark"][...] if "exchange/data_dark" in fh else None
            if "exchange/theta" not in fh:
                raise InputError(path, "no 'exchange/theta' dataset: projection angles unknown")
            tds = fh["exchange/theta"]
            theta = np.asarray(tds[...], dtype=float).ravel()
            units = tds.attrs.get("units", b"")
            units = units.decode() if isinstance(units, bytes) else str(units)
            if units.lower().startswith("deg") or (
                not units and np.abs(theta).max(initial=0) > 2 * np.pi + 1e-6
            ):
                theta = np.deg2rad(theta)
            if pixel_nm is None:
                key = "measurement/instrument/detector/pixel_size"
                if key in fh:
                    ds = fh[key]
                    value = float(np.asarray(ds[...]).ravel()[0])
                    unit = ds.attrs.get("units", b"nm")
                    unit = unit.decode() if isinstance(unit, bytes) else str(unit)
                    scale = {"nm": 1.0, "um": 1e3, "µm": 1e3, "m": 1e9, "mm": 1e6}.get(unit)
                    if scale is None:
                        raise InputError(path, f"unknown pixel size unit {unit!r}")
                    pixel_nm = value * scale
            meta = {}
            if "sxtflow" in fh:
                meta = json.loads(fh["sxtflow"].attrs.get("meta", "{}"))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"cannot read HDF5 file ({exc})") from exc
    check_finite(data, path, "exchange/data")
    try:
        return Projections(data, theta, flats, darks, pixel_nm, meta)
    except ValueError as exc:
        raise InputError(path, str(exc)) from exc


def write_projections(path: str | os.PathLike, proj: Projections) -> Path:
    """Write a tilt series atomically as Data Exchange HDF5 (angles in radians)."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
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


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically (numpy scalars and arrays are converted)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
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
