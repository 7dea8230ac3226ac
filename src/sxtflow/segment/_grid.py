"""Label volumes (annotations, truths) read onto their tomogram's grid, with clear errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np

from ..core import InputError, Volume
from ..io import read_volume

log = logging.getLogger("sxtflow")


def _integer_labels(data: np.ndarray, path, what: str) -> np.ndarray:
    """uint8 label values, or an error naming non-integer or out-of-range values."""
    if data.dtype.kind == "f" and not np.all(data == np.round(data)):
        raise InputError(path, f"{what} holds non-integer values; expected label values")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise InputError(path, f"{what} values {data.min()}..{data.max()} are outside 0..255")
    return data.astype(np.uint8)


def read_labels_on_grid(
    path: str | os.PathLike,
    shape,
    voxel_nm,
    *,
    what: str = "annotation",
    source: Mapping | None = None,
) -> np.ndarray:
    """A label volume (annotation, truth) on a tomogram's grid, or a clear error.

    Parameters
    ----------
    path : path-like
        The label volume (uint8 values of the label table; 0 = not annotated).
    shape : tuple of 3 int
        The tomogram's shape (z, y, x).
    voxel_nm : 3-tuple of float
        The tomogram's voxel size (z, y, x) in nm; a file without one is taken to lie on
        this grid.
    what : str
        What the volume is, for the error messages.
    source : mapping, optional
        The tomogram's ``meta["resampled_from"]`` (``shape``, ``voxel_nm``): a volume on the
        original grid is resampled with the tomogram.

    Returns
    -------
    ndarray, shape ``shape``, uint8

    Raises
    ------
    InputError
        Non-integer values or values outside 0..255, or a shape or voxel size (beyond 1 %)
        other than the tomogram's.
    """
    # a file without a voxel size of its own is judged by its shape
    vol = read_volume(path, default_voxel_nm=voxel_nm)
    if (
        vol.meta["voxel_source"] == "default"
        and source
        and vol.data.shape == tuple(source["shape"])
    ):
        vol = Volume(vol.data, tuple(source["voxel_nm"]), vol.meta)
    data = _integer_labels(vol.data, path, what)
    on_source = (
        source is not None
        and data.shape == tuple(source["shape"])
        and np.allclose(vol.voxel_nm, source["voxel_nm"], rtol=0.01)
    )
    if on_source:
        from ..resample import resample_labels

        log.info("%s: resampling the %s from %s to %s nm", path, what, vol.voxel_nm, voxel_nm)
        return resample_labels(data, vol.voxel_nm, voxel_nm, sparse=what == "annotation")
    if data.shape != tuple(shape):
        raise InputError(
            path, f"{what} shape {data.shape} differs from the tomogram's {tuple(shape)}"
        )
    if not np.allclose(vol.voxel_nm, voxel_nm, rtol=0.01):
        raise InputError(
            path,
            f"{what} voxel size {tuple(round(v, 3) for v in vol.voxel_nm)} nm differs from "
            f"the tomogram's {tuple(round(v, 3) for v in voxel_nm)} nm",
        )
    return data
