"""OME-Zarr (OME-NGFF) export: multiscale tomograms, label images and class probabilities.

Large tomograms want a chunked, multiscale format that napari (``napari-ome-zarr``),
neuroglancer, webKnossos and the OME-Zarr tools stream without loading the whole volume.
The files are written with ``ome-zarr-py`` (the OME reference implementation, NGFF 0.5 on
zarr v3) and follow the specification's layout:

``tomogram.ome.zarr``
    Image (axes ``z, y, x`` in micrometres), LAC in µm⁻¹, one dataset per level ``s0, s1, …``;
    each level halves every axis (block mean, :data:`ome_zarr.scale.Methods.LOCAL_MEAN`), its
    ``scale`` transform is the voxel size in µm times the shape ratio to level 0 and its
    ``translation`` puts a coarse voxel's centre at the centre of the fine voxels it averages.
``tomogram.ome.zarr/labels/<name>``
    Label images on the same grid and levels (nearest-neighbour downsampling, so values stay
    label values), with ``image-label`` metadata: the colour and name of every class value
    from the label table.
``probabilities.ome.zarr``
    Image with axes ``c, z, y, x``: one channel per class (ascending class value), float32
    in [0, 1], channel names and colours in ``omero`` metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["auto_levels", "scale_factors", "rgba", "write_image", "write_labels", "read_levels"]

_UNITS = {a: "micrometer" for a in "zyx"}


def _require():
    try:
        import dask.array as da
        import ome_zarr  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed by `make install`
        raise ImportError(
            "OME-Zarr export needs the ome-zarr package: pip install -e '.[ome-zarr]'"
        ) from exc
    return da


def auto_levels(shape: Sequence[int], *, min_size: int = 16, max_levels: int = 6) -> int:
    """Number of pyramid levels: halve while every axis of the next level keeps ``min_size``.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape ``(z, y, x)`` in voxels of level 0.
    min_size : int
        Smallest axis length (voxels) a level may have.
    max_levels : int
        Upper bound, level 0 included.

    Returns
    -------
    int
        At least 1 (level 0 alone).

    Examples
    --------
    >>> auto_levels((96, 112, 112))
    3
    >>> auto_levels((20, 512, 512))
    1
    """
    n = 1
    while n < max_levels and min(int(s) // 2**n for s in shape) >= min_size:
        n += 1
    return n


def scale_factors(levels: int, axes: str = "zyx") -> list[dict[str, int]]:
    """Downsampling factors of levels 1 … ``levels − 1`` for ome-zarr-py (every spatial axis).

    Examples
    --------
    >>> scale_factors(3)
    [{'z': 2, 'y': 2, 'x': 2}, {'z': 4, 'y': 4, 'x': 4}]
    """
    if levels < 1:
        raise ValueError(f"levels must be ≥ 1, got {levels}")
    return [{a: (2**i if a in "zyx" else 1) for a in axes} for i in range(1, levels)]


def rgba(colour: str, alpha: int = 255) -> list[int]:
    """``"#rrggbb"`` → ``[r, g, b, alpha]`` (0–255), as NGFF ``image-label`` colours want.

    Examples
    --------
    >>> rgba("#4f7cff")
    [79, 124, 255, 255]
    """
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour {colour!r} is not #rrggbb")
    return [int(text[i : i + 2], 16) for i in (0, 2, 4)] + [int(alpha)]


def _chunks(shape, chunks) -> tuple[int, ...]:
    return tuple(max(1, min(int(c), int(n))) for c, n in zip(chunks, shape, strict=True))


def write_image(
    path: str | os.PathLike,
    data,
    voxel_nm: Sequence[float],
    *,
    name: str,
    levels: int,
    chunks: Sequence[int] = (64, 128, 128),
    channels: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
) -> Path:
    """Write a multiscale NGFF image (a new store at ``path``).

    Parameters
    ----------
    path : path-like
        Directory of the new store (``*.ome.zarr``); must not exist (write into a temporary
        directory from :func:`sxtflow.io.atomic_path` and rename).
    data : array-like, shape (z, y, x) or (c, z, y, x)
        numpy, memory-mapped or zarr array; read chunk by chunk.
    voxel_nm : sequence of 3 float
        Voxel size ``(z, y, x)`` in nm of level 0; written in µm.
    name : str
        The image's name in the metadata.
    levels : int
        Pyramid levels (level 0 included); each halves z, y and x (block mean).
    chunks : sequence of 3 int
        Spatial chunk shape in voxels (clipped to the level's shape).
    channels, colours : sequence of str, optional
        With 4D data: channel names and ``#rrggbb`` colours (``omero`` metadata).

    Returns
    -------
    Path
    """
    da = _require()
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image as _write

    path = Path(path)
    axes = "czyx" if np.ndim(data) == 4 else "zyx"
    if np.ndim(data) not in (3, 4):
        raise ValueError(f"image must be (z, y, x) or (c, z, y, x), got shape {np.shape(data)}")
    spatial = tuple(int(s) for s in data.shape[-3:])
    chunk = ((1,) if axes == "czyx" else ()) + _chunks(spatial, chunks)
    arr = da.from_array(data, chunks=chunk)
    scale = {a: v / 1000.0 for a, v in zip("zyx", voxel_nm, strict=True)}
    units = dict(_UNITS)
    if axes == "czyx":
        scale = {"c": 1.0, **scale}
    metadata = {}
    if channels is not None:
        colours = colours or ["#ffffff"] * len(channels)
        metadata["omero"] = {
            "channels": [
                {
                    "label": str(c),
                    "color": col.lstrip("#").upper(),
                    "active": True,
                    "window": {"start": 0.0, "end": 1.0, "min": 0.0, "max": 1.0},
                }
                for c, col in zip(channels, colours, strict=True)
            ]
        }
    _write(
        arr,
        str(path),
        scale_factors=scale_factors(levels, axes),
        method=Methods.LOCAL_MEAN,
        axes=list(axes),
        scale=scale,
        axes_units=units,
        name=name,
        storage_options={"chunks": chunk},
        **metadata,
    )
    return path


def write_labels(
    image_path: str | os.PathLike,
    name: str,
    data,
    voxel_nm: Sequence[float],
    *,
    levels: int,
    table,
    chunks: Sequence[int] = (64, 128, 128),
) -> Path:
    """Add a multiscale label image ``labels/<name>`` to an NGFF image written by :func:`write_image`.

    Parameters
    ----------
    image_path : path-like
        The image store.
    name : str
        Label image name (e.g. ``"segmentation"``).
    data : array-like, shape (z, y, x), integer
        Label values of the label table; 0 = background / not annotated.
    voxel_nm : sequence of 3 float
        Voxel size ``(z, y, x)`` in nm (that of the image).
    levels : int
        As the image's, so every level lies on the image's grid.
    table : sxtflow.labels.LabelTable
        Names and colours of the values (``image-label`` ``colors`` and ``properties``).
    chunks : sequence of 3 int

    Returns
    -------
    Path
        ``image_path/labels/<name>``.
    """
    da = _require()
    import zarr
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_labels as _write

    values = sorted(int(v) for v in np.unique(np.asarray(data)) if int(v) != 0)
    known = {
        int(v): (str(n), str(c)) for v, n, c in table.table[["value", "name", "colour"]].values
    }
    colors = [{"label-value": v, "rgba": rgba(known[v][1])} for v in values if v in known]
    properties = [{"label-value": v, "name": known[v][0]} for v in values if v in known]
    arr = da.from_array(data, chunks=_chunks(data.shape, chunks))
    root = zarr.open_group(str(image_path), mode="a")
    _write(
        arr,
        root,
        name=name,
        scaler=None,
        scale_factors=scale_factors(levels),
        method=Methods.NEAREST,
        axes=list("zyx"),
        scale={a: v / 1000.0 for a, v in zip("zyx", voxel_nm, strict=True)},
        axes_units=dict(_UNITS),
        storage_options={"chunks": _chunks(data.shape, chunks)},
        label_metadata={"colors": colors, "properties": properties},
    )
    return Path(image_path) / "labels" / name


def read_levels(path: str | os.PathLike) -> dict[str, dict]:
    """Read an NGFF store back with ome-zarr-py's reader (what napari-ome-zarr uses).

    Returns
    -------
    dict
        Node name (the image's, and each label image's) → ``{"levels": [dask arrays],
        "scale_um": [per-level scale lists], "translation_um": [...], "axes": [...],
        "colors": {value: rgba 0–1} (labels only), "properties": {value: {...}}}``.
    """
    _require()
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    location = parse_url(str(path))
    if location is None:
        from .core import InputError

        raise InputError(path, "not an OME-Zarr store")
    out: dict[str, dict] = {}
    for node in Reader(location)():
        if not node.data:
            continue
        meta = node.metadata
        transforms = meta.get("coordinateTransformations") or []
        out[str(meta.get("name"))] = {
            "levels": list(node.data),
            "scale_um": [next(t["scale"] for t in ts if t["type"] == "scale") for ts in transforms],
            "translation_um": [
                next((t["translation"] for t in ts if t["type"] == "translation"), None)
                for ts in transforms
            ],
            "axes": [a["name"] if isinstance(a, Mapping) else a for a in meta.get("axes", [])],
            "colors": meta.get("color"),
            "properties": meta.get("properties"),
            "channel_names": meta.get("channel_names"),
        }
    return out
