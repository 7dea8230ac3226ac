"""Tilt series: Data Exchange and NeXus NXtomo HDF5, MRC/TIFF stacks with angle files and
Zeiss TXRM/XRM (:mod:`._zeiss`); the writer is Data Exchange HDF5.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..core import InputError, Projections, _unit_scale, check_finite
from ._atomic import atomic_path
from ._tables import _json_default
from ._volumes import VOXEL_MISMATCH_WARN, _sniff
from ._zeiss import _read_txrm

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
      :func:`sxtflow.recon.normalize`.
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
    raw counts and :func:`sxtflow.recon.reconstruct` will ask for flats.

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
        non-positive values is left to :func:`sxtflow.recon.normalize`, which clips
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

    logging.getLogger("sxtflow").warning(
        "%s: %d zero/negative intensities (%.3f%%); they will be clipped to a tiny "
        "transmission during normalisation",
        path,
        n_bad,
        100 * frac,
    )


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
