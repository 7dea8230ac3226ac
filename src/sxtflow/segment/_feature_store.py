"""Feature stores: a volume's features in a sealed zarr directory, and reading them back."""

from __future__ import annotations

import os
from pathlib import Path

from ..io import InputError, Volume, atomic_path, create_zarr_array, seal_store, verify_store
from ._features import FeatureSpec, _spatial_chunks, compute_features

#: the store's format tag (a file format name, kept when the module moved)
_FORMAT = "sxtflow.features/1"


def write_features(
    path: str | os.PathLike,
    volume: Volume,
    spec: FeatureSpec | None = None,
    *,
    block: tuple[int, int, int] = (64, 64, 64),
) -> Path:
    """Compute features of ``volume`` and store them atomically as a zarr directory.

    The store holds the array ``"features"``, shape ``(F, z, y, x)``, float32, chunked
    ``(F, *block)`` (one chunk per computed block, so a classifier reads one chunk per
    block), with attributes ``format``, ``feature_spec`` (:meth:`FeatureSpec.to_dict`),
    ``feature_names`` and ``voxel_nm`` (z, y, x).

    Parameters
    ----------
    path : path-like
        Target directory (``*.zarr``); replaced only when the computation succeeds.
    volume : Volume
    spec : FeatureSpec, optional
    block : tuple of 3 int
        Block (and chunk) size in voxels.

    Returns
    -------
    Path
    """

    spec = FeatureSpec() if spec is None else spec
    path = Path(path)
    shape = tuple(volume.data.shape)
    chunks = (spec.n_features, *_spatial_chunks(shape, block))
    with atomic_path(path, directory=True) as tmp:
        arr = create_zarr_array(tmp, "features", (spec.n_features, *shape), chunks)
        arr.attrs.update(
            {
                "format": _FORMAT,
                "feature_spec": spec.to_dict(),
                "feature_names": spec.names(),
                "voxel_nm": list(volume.voxel_nm),
            }
        )
        compute_features(volume.data, spec, block=chunks[1:], out=arr)
        seal_store(tmp)  # the completion record, written last
    return path


def open_features(path: str | os.PathLike):
    """Open a feature store written by :func:`write_features` (lazily, read-only).

    The store is first checked against its completion record
    (:func:`sxtflow.io.verify_store`: every chunk present and unchanged), so a partial or
    damaged store is refused instead of read back as zeros.

    Returns
    -------
    features : zarr array, shape (F, z, y, x), float32
    spec : FeatureSpec
    voxel_nm : tuple of 3 float
        Voxel size (z, y, x) in nm.

    Raises
    ------
    InputError
        Missing path, not a zarr store, no completion record (partial), a missing or changed
        chunk, no ``features`` array or inconsistent attributes.
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputError(path, "feature store does not exist")
    verify_store(path)
    try:
        root = zarr.open_group(str(path), mode="r")
        arr = root["features"]
    except Exception as exc:
        raise InputError(
            path, f"not a readable feature store ({type(exc).__name__}: {exc})"
        ) from exc
    attrs = dict(arr.attrs)
    try:
        spec = FeatureSpec.from_dict(attrs["feature_spec"])
        voxel_nm = tuple(float(v) for v in attrs["voxel_nm"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            path, f"feature store lacks a valid feature_spec/voxel_nm ({exc})"
        ) from exc
    if arr.ndim != 4 or arr.shape[0] != spec.n_features or len(voxel_nm) != 3:
        raise InputError(
            path,
            f"features array has shape {tuple(arr.shape)} but its spec has "
            f"{spec.n_features} channels",
        )
    if list(attrs.get("feature_names", spec.names())) != spec.names():
        raise InputError(path, "feature_names do not match the feature spec")
    return arr, spec, voxel_nm
