"""AmiraMesh / Avizo lattices (``.am``, ``.rec``, ``.labels``): reader and writer."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np

from ..core import InputError, Volume, _unit_scale
from ._atomic import atomic_path

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
