"""Resampling volumes to another voxel size: anti-aliased for LAC, plurality vote for labels.

A classifier learns features at a scale in voxels, so it transfers only between tomograms of
the same voxel size. Tomograms of several voxel sizes are brought onto one grid (config
``reconstruct.resample_to_nm``) with :func:`resample_volume`; their annotations and truths with
:func:`resample_labels`, so labels stay on the tomogram's grid.

Grid convention: voxel centres at ``(i + 0.5) * voxel`` from the volume's corner, so the
resampled volume covers the same field (``floor(n * old / new)`` voxels along each axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .core import Volume, _voxel3

__all__ = ["resampled_shape", "resample_volume", "resample_labels"]


def resampled_shape(shape: Sequence[int], voxel_nm, target_nm) -> tuple[int, int, int]:
    """Shape of a ``shape`` volume of ``voxel_nm`` voxels on a grid of ``target_nm`` voxels.

    Examples
    --------
    >>> resampled_shape((10, 20, 21), 25.0, 50.0)
    (5, 10, 10)
    """
    src, dst = np.asarray(_voxel3(voxel_nm)), np.asarray(_voxel3(target_nm))
    n = np.floor(np.asarray(shape, dtype=float) * src / dst + 1e-6).astype(int)
    return tuple(int(v) for v in np.maximum(n, 1))


def _sample(data: np.ndarray, src, dst, shape, order: int, shift=0.0) -> np.ndarray:
    """Values at the centres of the ``dst`` grid (linear or nearest interpolation); ``shift``
    (input voxels) is added to the sampled coordinates."""
    scale = dst / src
    offset = 0.5 * scale - 0.5 + shift
    return ndimage.affine_transform(
        data, scale, offset=offset, output_shape=shape, order=order, mode="nearest"
    )


def resample_volume(volume: Volume, target_nm) -> Volume:
    """Resample a scalar volume (e.g. LAC in µm⁻¹) to ``target_nm`` voxels, anti-aliased.

    Before sampling the new grid, a Gaussian of σ = (f − 1) / 2 input voxels along each
    axis that is shrunk by a factor f = new / old > 1 removes the detail the coarser grid
    cannot hold (scikit-image's ``resize(anti_aliasing=True)`` convention); then the values
    are interpolated linearly at the new voxel centres. Upsampling is linear interpolation
    alone. Means are preserved (a constant stays the same constant).

    Parameters
    ----------
    volume : Volume
        ``(z, y, x)`` data, voxel size in nm.
    target_nm : float or 3 floats
        New voxel size (z, y, x) in nm.

    Returns
    -------
    Volume
        float32 data of :func:`resampled_shape`, ``voxel_nm = target_nm``, the metadata
        copied with ``meta["resampled_from"] = {"voxel_nm": [...], "shape": [...]}``.

    Examples
    --------
    >>> v = Volume(np.ones((8, 8, 8), np.float32), 25.0)
    >>> r = resample_volume(v, 50.0)
    >>> r.data.shape, r.voxel_nm, float(r.data.mean())
    ((4, 4, 4), (50.0, 50.0, 50.0), 1.0)
    """
    src, dst = np.asarray(volume.voxel_nm), np.asarray(_voxel3(target_nm))
    data = np.asarray(volume.data, dtype=np.float32)
    factor = dst / src
    sigma = np.maximum(0.0, (factor - 1.0) / 2.0)
    if np.any(sigma > 0):
        data = ndimage.gaussian_filter(data, sigma, mode="nearest")
    shape = resampled_shape(data.shape, src, dst)
    out = _sample(data, src, dst, shape, order=1).astype(np.float32)
    meta = dict(volume.meta)
    meta["resampled_from"] = {"voxel_nm": list(volume.voxel_nm), "shape": list(volume.data.shape)}
    return Volume(out, tuple(dst), meta)


def resample_labels(labels: np.ndarray, voxel_nm, target_nm, *, sparse: bool = False):
    """Resample a label volume: each new voxel takes the label covering most of it.

    Each label's share of a new voxel is its indicator averaged over the voxel's footprint
    (a box of f input voxels when shrinking by f, then linear interpolation at the new
    centres); the label with the largest share wins, 0 included. In a ``sparse`` annotation
    (0 = not annotated) 0 does not compete: a new voxel takes the annotated label with the
    largest share, provided it covers at least half an input voxel, so thin strokes survive
    (annotators paint inside objects, so a coarse voxel a stroke crosses is inside). Growing
    the grid is nearest-neighbour sampling.

    Parameters
    ----------
    labels : ndarray of int, shape (z, y, x)
    voxel_nm, target_nm : float or 3 floats
        Old and new voxel size (z, y, x) in nm.
    sparse : bool
        ``labels`` is a sparse annotation (see above), not a full segmentation.

    Returns
    -------
    ndarray
        Same dtype, shape :func:`resampled_shape`.

    Examples
    --------
    >>> lab = np.zeros((4, 4, 4), np.uint8); lab[:, :, 2:] = 3; lab[0, 0, 0] = 5
    >>> resample_labels(lab, 10.0, 20.0)[0].tolist()
    [[0, 3], [0, 3]]
    >>> resample_labels(lab, 10.0, 20.0, sparse=True)[0].tolist()
    [[5, 3], [0, 3]]
    """
    labels = np.asarray(labels)
    src, dst = np.asarray(_voxel3(voxel_nm)), np.asarray(_voxel3(target_nm))
    shape = resampled_shape(labels.shape, src, dst)
    factor = dst / src
    if np.all(factor <= 1.0):
        return _sample(labels, src, dst, shape, order=0).astype(labels.dtype)
    size = np.maximum(1, np.round(factor)).astype(int)
    best = np.zeros(shape, dtype=labels.dtype)
    # sparse: an annotated label needs half an input voxel of the footprint to count
    best_share = np.full(shape, 0.5 / np.prod(size) if sparse else -1.0, dtype=np.float32)
    for value in np.unique(labels):
        if sparse and value == 0:
            continue
        share = ndimage.uniform_filter((labels == value).astype(np.float32), size, mode="nearest")
        # an even box of scipy's uniform_filter is centred half a voxel before its index
        share = _sample(share, src, dst, shape, order=1, shift=0.5 * (size % 2 == 0))
        better = share > best_share
        best[better] = value
        best_share[better] = share[better]
    return best
